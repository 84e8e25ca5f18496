//! Warden's egress proxy: the only way out of a sandbox with an allowlist.
//!
//! A sandbox keeps its own network namespace with no route out; the runtime
//! opens a listener on the sandbox's loopback (`127.0.0.1:3128`) and this
//! crate serves it from the host. It speaks HTTP CONNECT and absolute-form
//! plain HTTP, checks every request against the sandbox's rules, resolves
//! the name itself, refuses non-public addresses, connects to exactly the
//! address it checked, refuses TLS whose SNI differs from the CONNECT host
//! and plain HTTP whose `Host` differs from the target, and reports every
//! attempt, allowed or not, to an [`EgressSink`].

mod address;
mod ctx;
mod event;
mod policy;
mod proxy;
mod sni;
mod tunnel;
mod upstream;

pub use address::{is_public, resolve, ResolveError};
pub use event::{EgressEvent, EgressSink, Outcome};
pub use policy::{Deny, OverrideError, Overrides, Policy};
pub use proxy::Egress;
pub use sni::{read_client_hello, ClientHello, SniError};

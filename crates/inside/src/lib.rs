//! What runs inside a native sandbox, and the wire the host speaks to it.
//!
//! A native sandbox's processes are, in order of birth:
//! - the **zygote** (`warden-init --zygote`, [`zygote`]): one long-lived,
//!   single-threaded process per runtime that clones every init;
//! - the **clone** ([`clone`]): the moment a zygote's child becomes PID 1
//!   of fresh namespaces and waits for the host's "go";
//! - the **init's set-up** ([`init`]): the new init builds the sandbox's
//!   root filesystem and confines itself, then serves the protocol
//!   (`crates/init`).
//!
//! [`wire`] and [`setup`] are what the host (`warden_runtime::native`) and
//! these processes agree on: fixed descriptor numbers, the zygote's request
//! and answer, the set-up message and what it describes. The host side of
//! each exchange lives in the runtime; this crate holds no host code, so the
//! init binary links neither the runtime nor anything above it.

pub mod clone;
pub mod init;
pub mod net;
pub mod setup;
pub mod wire;
pub mod zygote;

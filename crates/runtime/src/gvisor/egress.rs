//! The egress proxy's door into a gVisor sandbox.
//!
//! gVisor's own network stack (netstack) lives inside the Sentry, where the
//! host cannot bind a socket. So a sandbox with an allowlist runs with
//! gVisor's host networking (`--network=host`: the Sentry serves the
//! application's inet sockets with sockets of its own on the host) inside a
//! network namespace made for it here, which holds nothing but `lo` and
//! the host's listener on `127.0.0.1:EGRESS_PROXY_PORT`. The sandbox then
//! reaches the proxy exactly as on the native tier, and nothing else: the
//! namespace has no other interface and no route out.
//!
//! The price is surface: inet socket calls of such a sandbox reach the host
//! kernel (through the Sentry's syscall filter) instead of staying in
//! netstack. Sandboxes without an allowlist keep `--network=none`.

use crate::native::{egress, netns};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// A fresh loopback-only network namespace with a listener on
/// `127.0.0.1:port` in it (the native tier's pieces: `netns::fresh`,
/// `egress::listen_in_ns`); the namespace lives as long as the returned
/// fd, the listener, or a process in it.
pub fn netns_with_listener(port: u16) -> std::io::Result<(OwnedFd, TcpListener)> {
    let ns = netns::fresh()?;
    let listener = egress::listen_in_ns(ns.as_fd(), port)?;
    Ok((ns, listener))
}

/// For `pre_exec`: moves the (forked, single-threaded) child into `ns`.
/// Only async-signal-safe calls.
pub fn enter(ns: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: setns on an fd we own; the child is about to exec.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

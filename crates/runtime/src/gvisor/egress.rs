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

use std::fs::File;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};

/// A fresh network namespace with `lo` up and a listener on
/// `127.0.0.1:port` in it; the namespace lives as long as the returned fd,
/// the listener, or a process in it.
pub fn netns_with_listener(port: u16) -> std::io::Result<(OwnedFd, TcpListener)> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(CLONE_NEWNET) changes only this thread's
            // namespace (allowed in a multi-threaded process); the thread
            // ends right after, so no other code runs in the namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            crate::native::inside::loopback_up().map_err(std::io::Error::other)?;
            let listener = TcpListener::bind(("127.0.0.1", port))?;
            let ns = File::open("/proc/thread-self/ns/net")?;
            Ok((OwnedFd::from(ns), listener))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
    })
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

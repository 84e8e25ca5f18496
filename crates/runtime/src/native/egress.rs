//! The egress proxy's door into a sandbox: a TCP listener on the sandbox's
//! own loopback, opened by the host before the sandbox runs any code.
//!
//! The host enters the sandbox's network namespace on a short-lived thread
//! (network namespaces are per thread), brings `lo` up and binds
//! `127.0.0.1:port` there. A socket stays in the namespace it was created
//! in, so the host then accepts the sandbox's connections on it directly:
//! no relay inside the sandbox, no route out of it, and nothing the code in
//! the sandbox could hold open or replace (the port is taken before it starts).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Opens `127.0.0.1:port` inside the network namespace of process `pid`.
pub fn listen_in(pid: i32, port: u16) -> std::io::Result<std::net::TcpListener> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    listen_in_ns(ns.as_fd(), port)
}

/// Opens `127.0.0.1:port` inside the network namespace `ns`.
pub fn listen_in_ns(ns: BorrowedFd<'_>, port: u16) -> std::io::Result<std::net::TcpListener> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a namespace fd the caller holds open; it
            // changes only this thread, which ends right after.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            warden_inside::net::loopback_up()?;
            std::net::TcpListener::bind(("127.0.0.1", port))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
    })
}

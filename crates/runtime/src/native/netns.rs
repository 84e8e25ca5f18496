//! Pre-made network namespaces, so a sandbox's clone need not make one.
//!
//! A new network namespace is the dearest part of the clone (~0.4 ms of the
//! ~0.5 ms it costs with every namespace flag: the kernel builds a whole
//! network stack). A background thread makes a few ahead of time, each with
//! only `lo`, brought up; the zygote enters one just before it clones an
//! init (without `CLONE_NEWNET`), so the init starts in it.
//!
//! Each namespace is used once: `take` moves its only fd out of the pool,
//! the runtime hands it to the zygote and closes it, and the zygote closes
//! its copy right after the clone, so afterwards only the sandbox's own
//! processes hold it and it dies with them. When the pool is empty (a burst
//! of starts), the sandbox simply gets `CLONE_NEWNET` as before.
//!
//! These namespaces are owned by the host's user namespace, not the
//! sandbox's: nothing in the sandbox ever holds a capability over its own
//! network (see docs/security.md, "Pre-made network namespaces").

use super::filler::{Filler, Shared};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Namespaces kept ready: enough for a short burst, few enough that idle
/// ones cost little (each is a loopback-only stack, a few tens of KiB).
pub const POOL_SIZE: usize = 4;

#[derive(Default)]
struct State {
    ready: Vec<OwnedFd>,
    closed: bool,
}

pub struct NetnsPool(Filler<State>);

impl NetnsPool {
    /// Starts the thread that keeps `size` namespaces ready (`size` 0: no
    /// pool, every sandbox uses `CLONE_NEWNET`).
    pub fn start(size: usize) -> NetnsPool {
        NetnsPool(Filler::start(
            "warden-netns",
            State::default(),
            size > 0,
            move |s| fill(s, size),
        ))
    }

    /// A fresh namespace of its own for one sandbox, if one is ready.
    pub fn take(&self) -> Option<OwnedFd> {
        let ns = self.0.shared.lock().ready.pop();
        self.0.shared.wake();
        ns
    }
}

impl Drop for NetnsPool {
    fn drop(&mut self) {
        self.0.stop(|st| st.closed = true);
        // The unused namespaces go with their fds.
        self.0.shared.lock().ready.clear();
    }
}

/// The filler thread: refills the pool whenever it is short, until closed.
/// On any error it stops (and the runtime falls back to `CLONE_NEWNET`).
fn fill(shared: &Shared<State>, size: usize) {
    let home = match File::open("/proc/thread-self/ns/net") {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("no network namespace pool: {e}");
            return;
        }
    };
    loop {
        let st = shared.wait_until(shared.lock(), |st| st.closed || st.ready.len() < size);
        if st.closed {
            return;
        }
        drop(st);
        match make(&home) {
            Ok(ns) => shared.lock().ready.push(ns),
            Err(e) => {
                tracing::warn!("network namespace pool stopped: {e}");
                return;
            }
        }
    }
}

/// One loopback-only namespace outside the pool (made on a short-lived
/// thread of its own), for a sandbox that must not take a pooled one.
pub fn fresh() -> std::io::Result<OwnedFd> {
    std::thread::scope(|s| {
        s.spawn(fresh_on_this_thread)
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")))
    })
}

/// As [`fresh`], made by the calling thread itself, for a caller that is
/// already a short-lived thread of its own (a `warden run` making its one
/// sandbox's namespace next to its other start-up work): the thread spends
/// the making in the new namespace, and ends with nothing else run on it
/// should it fail to come back.
pub fn fresh_on_this_thread() -> std::io::Result<OwnedFd> {
    make(&File::open("/proc/thread-self/ns/net")?)
}

/// Makes one loopback-only namespace on this thread and returns to `home`.
fn make(home: &File) -> std::io::Result<OwnedFd> {
    // SAFETY: unshare/setns of the network namespace change only this
    // thread (namespaces of this kind are per thread), which runs nothing
    // but this loop.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let made = (|| {
        warden_inside::net::loopback_up()?;
        // SAFETY: a plain open of a constant path; the fd is ours.
        let fd = unsafe {
            libc::open(
                c"/proc/thread-self/ns/net".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this fd.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })();
    // SAFETY: as above, on a namespace fd we hold open.
    if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        // Stuck in a namespace we cannot vouch for: stop making them.
        return Err(std::io::Error::last_os_error());
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn ino(fd: impl AsFd) -> u64 {
        rustix::fs::fstat(fd).map(|s| s.st_ino).unwrap_or(0)
    }

    #[test]
    fn namespaces_are_fresh_and_never_handed_out_twice() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let home = ino(File::open("/proc/self/ns/net").unwrap());
        let pool = NetnsPool::start(2);
        let mut seen = std::collections::BTreeSet::new();
        let mut held = Vec::new();
        for _ in 0..6 {
            let ns = loop {
                if let Some(ns) = pool.take() {
                    break ns;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            };
            let i = ino(&ns);
            assert_ne!(i, home, "the host's own namespace");
            // Held until the end, so the kernel cannot recycle the inode.
            assert!(seen.insert(i), "handed out twice");
            held.push(ns);
        }
        drop(pool);
        // This thread never left the host's namespace.
        assert_eq!(ino(File::open("/proc/thread-self/ns/net").unwrap()), home);
    }
}

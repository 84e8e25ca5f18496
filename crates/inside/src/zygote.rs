//! The zygote: one long-lived, single-threaded `warden-init --zygote`
//! process per runtime that clones every sandbox's init.
//!
//! Cloning from the zygote instead of from the (large, multi-threaded)
//! Warden process means the new init needs no `execve`: it is already the
//! init binary, fully loaded and initialised, so it goes straight to its
//! set-up. The zygote runs as host root with nothing but a socket to the
//! runtime (whose end, `Zygote` in the runtime's `native/zygote.rs`, starts
//! it and sends it requests, see [`crate::wire::request`]); it exits when
//! that socket closes, and the kernel reaps its children itself (SIGCHLD
//! ignored), so no zombie outlives a sandbox.
//!
//! With a network namespace in the request, the zygote enters it, clones
//! without `CLONE_NEWNET` (so the init starts in it), and returns to its
//! own at once. Only the zygote can do this: entering a namespace owned by
//! the host's user namespace takes the host's `CAP_SYS_ADMIN`, which the
//! init lost with `CLONE_NEWUSER`.
//!
//! The clone runs with the zygote's *effective* uid set to the slot's first
//! host uid (real and saved uid stay 0, so it returns to root right after).
//! The kernel makes whoever creates a user namespace its owner, and charges
//! per-user counters of everything inside it (inotify instances and
//! watches, user namespaces, ...) to that owner in the parent namespace: as
//! host root, every sandbox would share host root's allowance (128 inotify
//! instances), with each other and with the host's own services. Owned by
//! the slot's uid, each sandbox has the host's per-user allowance to itself.
//! The child's ids end up as before: once its maps exist it becomes uid 0 of
//! its namespace, which is the slot's first host uid.

use crate::clone;
use crate::wire::{recv_with_fds, request_owner, send_with_fds, READY, REQUEST_LEN};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use warden_confine::CompiledFilter;

/// Sets only the effective uid (raw system call: this thread alone, and no
/// libc bookkeeping in a process that is about to clone).
fn set_euid(uid: u32) -> bool {
    // SAFETY: a plain system call; -1 leaves the real and saved uid as is.
    unsafe { libc::syscall(libc::SYS_setresuid, u32::MAX, uid, u32::MAX) == 0 }
}

/// Reads the inherited part of the seccomp policy from `fd` and attaches it.
fn confine_self(fd: RawFd) -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: our launcher passed us this fd and nothing else uses it.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)?;
    warden_confine::apply_seccomp(&CompiledFilter::from_bytes(&bytes)?)?;
    Ok(())
}

/// The zygote's loop (in `warden-init --zygote FD --filter-fd FD`). Returns
/// only in a newly cloned child, which then continues as a sandbox's init
/// with its control channel on fd 3 and its setup pipe on fd 4.
pub fn serve(fd: RawFd, filter_fd: RawFd) {
    // Our own session: a terminal's Ctrl-C aimed at Warden must not reach
    // us (or, through us, any sandbox). We were spawned in Warden's process
    // group, so we are not a group leader and this cannot fail.
    // SAFETY: a plain system call.
    if unsafe { libc::setsid() } < 0 {
        std::process::exit(1);
    }
    // SAFETY: our launcher passed us this fd and nothing else uses it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Confined before the first clone: every init inherits the filter.
    if confine_self(filter_fd).is_err() || send_with_fds(&sock, &[READY], &[]).is_err() {
        std::process::exit(1);
    }
    // The kernel reaps our children: a sandbox's init never lingers as a
    // zombie once its pidfd has reported the exit.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // Our own network namespace, to come back to after cloning into a
    // pooled one.
    let Ok(home) = std::fs::File::open("/proc/self/ns/net") else {
        std::process::exit(1);
    };
    loop {
        let mut buf = [0u8; REQUEST_LEN];
        let Ok((n, fds)) = recv_with_fds(&sock, &mut buf) else {
            std::process::exit(0);
        };
        if n == 0 {
            // The runtime went away.
            std::process::exit(0);
        }
        let mut fds = fds.into_iter();
        let (Some(control), Some(setup), netns, None, REQUEST_LEN) =
            (fds.next(), fds.next(), fds.next(), fds.next(), n)
        else {
            let _ = send_with_fds(&sock, &(-libc::EINVAL).to_le_bytes(), &[]);
            continue;
        };
        let owner = request_owner(&buf);
        // Root never owns a sandbox's namespace: that is the point.
        if owner == 0 {
            let _ = send_with_fds(&sock, &(-libc::EINVAL).to_le_bytes(), &[]);
            continue;
        }
        if let Some(ns) = &netns {
            // SAFETY: setns on an fd we were sent; we are single-threaded.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let errno = std::io::Error::last_os_error().raw_os_error();
                let _ = send_with_fds(&sock, &(-errno.unwrap_or(libc::EIO)).to_le_bytes(), &[]);
                continue;
            }
        }
        // The namespace (entered above) needs root; the clone runs as the
        // slot's uid so that its user namespace belongs to the slot.
        if !set_euid(owner) {
            let errno = std::io::Error::last_os_error().raw_os_error();
            let _ = send_with_fds(&sock, &(-errno.unwrap_or(libc::EPERM)).to_le_bytes(), &[]);
            // SAFETY: setns on our own namespace fd; single-threaded.
            if netns.is_some() && unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0
            {
                std::process::exit(1);
            }
            continue;
        }
        let cloned = clone::clone_into_namespaces(netns.is_none());
        // Root again (the saved uid is 0) before anything else in the
        // zygote, and the effective capabilities with it; a zygote that
        // cannot is useless and stops.
        if !matches!(cloned, Ok(None)) && !set_euid(0) {
            std::process::exit(1);
        }
        if netns.is_some() && !matches!(cloned, Ok(None)) {
            // Back home before anything else: a zygote that cannot return
            // stops rather than linger in a sandbox's namespace (the
            // runtime then fails every start).
            // SAFETY: as above, on our own namespace fd.
            if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                std::process::exit(1);
            }
        }
        // Never used again: the init holds the namespace now.
        drop(netns);
        match cloned {
            Ok(None) => {
                // The new init: our children are its own business again.
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                // SAFETY: a fresh single-threaded child.
                if let Err(code) =
                    unsafe { clone::enter_child(control.as_raw_fd(), setup.as_raw_fd()) }
                {
                    std::process::exit(code);
                }
                // enter_child closed every other fd, our socket included.
                std::mem::forget(sock);
                std::mem::forget(home);
                std::mem::forget(control);
                std::mem::forget(setup);
                return;
            }
            Ok(Some((pid, pidfd))) => {
                let _ = send_with_fds(&sock, &pid.to_le_bytes(), &[pidfd.as_fd()]);
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                let _ = send_with_fds(&sock, &(-errno).to_le_bytes(), &[]);
            }
        }
    }
}

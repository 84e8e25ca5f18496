//! The moment a zygote's child becomes a sandbox's init: `clone` into fresh
//! namespaces (run by the zygote, see `zygote.rs`), then, in the child,
//! its channels on fixed fds and a wait for the host's "go".
//!
//! The order follows bubblewrap, nsjail and youki: clone with every
//! namespace flag; the child blocks on a pipe; the host writes the uid/gid
//! maps and puts the child in its cgroup (the runtime's `native/spawn.rs`);
//! then it sends "go" plus the setup, and the child becomes root of its
//! user namespace and builds the sandbox (`init/`). The child must wait for
//! the maps: until they exist it has no uid it could become.

use crate::wire::{CONTROL_FD, GO, SETUP_FD};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Every namespace a sandbox gets (the cgroup namespace is made again
/// once the host has moved the init into its cgroup, see `init/`).
pub const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// `clone` into fresh namespaces; without `new_net` the child keeps the
/// caller's network namespace (the zygote has just entered a fresh one).
/// Returns the child's pid and pidfd in the parent, `None` in the child.
///
/// The classic `clone`, not `clone3`: its flags are a register the seccomp
/// policy can read, so the rules for it join the small part each sandbox
/// attaches (see `warden_confine::SETUP_SYSCALLS`), while `clone3` stays
/// refused with everything the zygote inherits. The sandbox then attaches
/// one filter instead of two.
pub fn clone_into_namespaces(new_net: bool) -> std::io::Result<Option<(i32, OwnedFd)>> {
    let mut pidfd: RawFd = -1;
    let mut flags = NAMESPACE_FLAGS | libc::CLONE_PIDFD as u64 | libc::SIGCHLD as u64;
    if !new_net {
        flags &= !(libc::CLONE_NEWNET as u64);
    }
    // SAFETY: no CLONE_VM and no new stack, so this behaves like fork();
    // the caller (the single-threaded zygote) continues in both processes.
    // With CLONE_PIDFD the kernel stores the pidfd through the parent_tid
    // argument (x86_64 and aarch64 order: flags, stack, parent_tid,
    // child_tid, tls).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            &mut pidfd as *mut RawFd,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if ret == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel gave us this pidfd and nobody else owns it.
    Ok(Some((ret as i32, unsafe { OwnedFd::from_raw_fd(pidfd) })))
}

/// The new child, in the namespaces `clone_into_namespaces` made: moves its
/// channels onto fds 3 and 4, points stdio at /dev/null, starts its own
/// session, closes everything else, waits for the host's "go" (sent once
/// the id maps and cgroup are in place), and becomes root of its user
/// namespace with no supplementary groups. Returns an exit code on failure.
///
/// # Safety
/// Must run in a freshly cloned, single-threaded child.
pub unsafe fn enter_child(sock: RawFd, setup: RawFd) -> Result<(), i32> {
    // Move the two channels above the range we are about to fill, then onto
    // their fixed numbers (dup2 clears close-on-exec on the copies).
    let s = libc::fcntl(sock, libc::F_DUPFD_CLOEXEC, 10);
    let p = libc::fcntl(setup, libc::F_DUPFD_CLOEXEC, 10);
    if s < 0 || p < 0 || libc::dup2(s, CONTROL_FD) < 0 || libc::dup2(p, SETUP_FD) < 0 {
        return Err(120);
    }
    // The init's own stdio goes nowhere: it reports through the channel.
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
    if null < 0 || libc::dup2(null, 0) < 0 || libc::dup2(null, 1) < 0 || libc::dup2(null, 2) < 0 {
        return Err(121);
    }
    // A session of its own: the init must not share the caller's session,
    // whose controlling terminal /dev/tty would otherwise reach.
    if libc::setsid() < 0 {
        return Err(124);
    }
    // Nothing else the launcher had open may reach the sandbox.
    libc::syscall(libc::SYS_close_range, SETUP_FD as u32 + 1, u32::MAX, 0u32);
    // Wait for the id maps and cgroup; EOF means the host gave up.
    let mut go = 0u8;
    loop {
        let r = libc::read(SETUP_FD, &mut go as *mut u8 as *mut libc::c_void, 1);
        if r == 1 && go == GO {
            break;
        }
        if r < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        return Err(122);
    }
    // We still hold the zygote's host ids (real and saved uid 0, effective
    // uid the slot's base, which owns our namespace), of which the new
    // namespace maps only the last. Become its root (host uid = the slot's
    // base) in all three and drop the host's supplementary groups, keeping
    // a full set of capabilities *in the sandbox's namespace* for the
    // set-up.
    if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) < 0
        || libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) < 0
        || libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) < 0
    {
        return Err(123);
    }
    Ok(())
}

//! The init's side of the host paths its set-up needs (its staging
//! directory, the `/dev` and `/etc` templates, an image directory,
//! `/input`, the sources of extra mounts), which arrive as descriptors
//! instead of names.
//!
//! The init runs as the slot's uid, with capabilities only in its own user
//! namespace: it cannot search a directory the host keeps to root (a data
//! directory of mode 0700, say). So the host opens each path in the init's
//! mount namespace and sends the descriptors over the control socket before
//! "go" (the runtime's `native/handles.rs`). The init moves them to fixed
//! numbers from [`FIRST_FD`] and names them `/proc/self/fd/N`
//! ([`crate::wire::fd_path`]). It closes them all once its root is pivoted,
//! so no handle on the host's tree outlives the set-up.

use crate::wire::{recv_with_fds, FIRST_FD, MAX_FDS, PATHS};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// Receives the `n` descriptors the host sent on `sock` and moves them to
/// `FIRST_FD..` (close-on-exec).
pub fn receive(sock: RawFd, n: usize) -> std::io::Result<()> {
    if n == 0 {
        return Ok(());
    }
    if n > MAX_FDS {
        return Err(std::io::Error::other("too many descriptors announced"));
    }
    // SAFETY: the control socket stays open for the init's whole life.
    let sock = unsafe { BorrowedFd::borrow_raw(sock) };
    let mut byte = [0u8; 1];
    let (bytes, got) = recv_with_fds(sock, &mut byte)?;
    if bytes != 1 || byte[0] != PATHS || got.len() != n {
        return Err(std::io::Error::other(format!(
            "expected {n} host paths, got {} (message of {bytes} bytes)",
            got.len(),
        )));
    }
    for (i, fd) in got.into_iter().enumerate() {
        let target = FIRST_FD + i as RawFd;
        // The received ones are small numbers (lowest free), far below
        // FIRST_FD, so no target is one of them.
        // SAFETY: dup3 onto a number we own from now on; `fd` is closed
        // when it drops.
        if unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Closes every descriptor [`receive`] placed, once nothing refers to the
/// host's tree by them any more.
pub fn close_all() {
    // SAFETY: a plain system call on numbers only set-up used.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            FIRST_FD as u32,
            (FIRST_FD as usize + MAX_FDS - 1) as u32,
            0u32,
        );
    }
}

//! Host paths a native sandbox's set-up needs (its staging directory, the
//! `/dev` and `/etc` templates, an image directory, `/input`, the sources of
//! extra mounts), handed to the init as descriptors instead of names.
//!
//! The init runs as the slot's uid, with capabilities only in its own user
//! namespace: it cannot search a directory the host keeps to root. A data or
//! state directory of mode 0700 (what a careful operator sets for a
//! directory holding a database) would make binding
//! `<data>/sandboxes/<id>/input` by name fail with EACCES. So the host
//! (root) opens each path, and does so *in the init's mount namespace*
//! (through `/proc/<pid>/root`, while the init still sees the host's tree):
//! the kernel binds only from mounts of the caller's own namespace. The
//! descriptors go to the init over its control socket before "go"; the
//! init moves them to fixed numbers from [`FIRST_FD`] and names them
//! `/proc/self/fd/N`, a magic link whose resolution needs no search
//! permission on the path's ancestors. It closes them all once its root is
//! pivoted, so no handle on the host's tree outlives the set-up.

use super::setup::NativeSetup;
use super::spawn::SpawnError;
use rustix::fs::{Mode, OFlags};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use warden_spec::Image;

/// Where the init keeps the descriptors: `FIRST_FD + i` for the i-th.
/// Far above the few it has open at that point (stdio and its channels).
pub const FIRST_FD: RawFd = 100;
/// Most descriptors one set-up may take (the kernel passes up to 253 in
/// one message; a spec's mounts are far fewer).
pub const MAX_FDS: usize = 64;

/// The name the init uses for the i-th descriptor.
fn fd_path(i: usize) -> String {
    format!("/proc/self/fd/{}", FIRST_FD as usize + i)
}

/// Host side: opens every host path `setup` names, as the init (`pid`)
/// would resolve it, and replaces each by the name the init will use.
/// Returns the descriptors in order, for [`send`].
pub fn open_for(pid: i32, setup: &mut NativeSetup) -> Result<Vec<OwnedFd>, SpawnError> {
    let mut fds = Vec::new();
    let mut take = |p: &mut String| -> Result<(), SpawnError> {
        if fds.len() == MAX_FDS {
            return Err(SpawnError::TooManyPaths(MAX_FDS));
        }
        let fd = rustix::fs::open(
            in_namespace_of(pid, Path::new(p.as_str())),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SpawnError::HostPath {
            path: p.clone(),
            source: e.into(),
        })?;
        *p = fd_path(fds.len());
        fds.push(fd);
        Ok(())
    };
    take(&mut setup.staging_dir)?;
    take(&mut setup.dev_template)?;
    take(&mut setup.etc_template)?;
    if let Image::Dir(dir) = &mut setup.image {
        take(dir)?;
    }
    if let Some(input) = &mut setup.input_dir {
        take(input)?;
    }
    for m in &mut setup.mounts {
        take(&mut m.source)?;
    }
    setup.path_fds = fds.len();
    Ok(fds)
}

/// `path` as process `pid` resolves it: from its root, or from its working
/// directory for a relative path (a relative state directory).
fn in_namespace_of(pid: i32, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) => PathBuf::from(format!("/proc/{pid}/root")).join(rel),
        Err(_) => PathBuf::from(format!("/proc/{pid}/cwd")).join(path),
    }
}

/// Host side: sends `fds` over the init's control socket (one byte with
/// the descriptors attached). Nothing is sent for none.
pub fn send(sock: impl AsFd, fds: &[OwnedFd]) -> std::io::Result<()> {
    if fds.is_empty() {
        return Ok(());
    }
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !cmsg.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(std::io::Error::other(
            "too many descriptors for one message",
        ));
    }
    sendmsg(sock, &[IoSlice::new(b"F")], &mut cmsg, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Init side: receives the `n` descriptors [`send`] sent on `sock` and
/// moves them to `FIRST_FD..` (close-on-exec).
pub fn receive(sock: RawFd, n: usize) -> std::io::Result<()> {
    if n == 0 {
        return Ok(());
    }
    if n > MAX_FDS {
        return Err(std::io::Error::other("too many descriptors announced"));
    }
    // SAFETY: the control socket stays open for the init's whole life.
    let sock = unsafe { BorrowedFd::borrow_raw(sock) };
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let r = loop {
        match recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut byte)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut got: Vec<OwnedFd> = Vec::new();
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            got.extend(rights);
        }
    }
    if r.bytes != 1 || byte[0] != b'F' || got.len() != n {
        return Err(std::io::Error::other(format!(
            "expected {n} host paths, got {} (message of {} bytes)",
            got.len(),
            r.bytes
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

/// Init side: closes every descriptor [`receive`] placed, once nothing
/// refers to the host's tree by them any more.
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

//! Host paths a native sandbox's set-up needs (its staging directory, the
//! `/dev` and `/etc` templates, an image directory, `/input`, the sources of
//! extra mounts), handed to the init as descriptors instead of names: the
//! host's side (the init's is `warden_inside::init`'s `handles.rs`).
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
//! init moves them to fixed numbers from `FIRST_FD` and names them
//! `/proc/self/fd/N`, a magic link whose resolution needs no search
//! permission on the path's ancestors. It closes them all once its root is
//! pivoted, so no handle on the host's tree outlives the set-up.

use super::error::SpawnError;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use warden_inside::setup::NativeSetup;
use warden_inside::wire::{fd_path, send_with_fds, MAX_FDS, PATHS};
use warden_spec::Image;

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
    send_with_fds(sock, &[PATHS], &borrowed)
}

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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use warden_inside::setup::NativeSetup;
use warden_inside::wire::{fd_path, send_with_fds, MAX_FDS, PATHS};
use warden_spec::Image;

/// Host side: opens every host path `setup` names, as the init (`pid`)
/// would resolve it, and replaces each by the name the init will use.
/// Returns the descriptors in order, for [`send`].
///
/// A writable root's overlay lowers (the image, the /etc template) and the
/// sources of mounts that carry the sandbox's own ids (volumes) go as
/// idmapped trees instead (see [`idmapped_tree`]).
pub fn open_for(pid: i32, setup: &mut NativeSetup) -> Result<Vec<OwnedFd>, SpawnError> {
    let mut fds = Vec::new();
    let mut userns = None;
    let writable = setup.writable_root;
    let mut take = |p: &mut String, how: Open| -> Result<(), SpawnError> {
        if fds.len() == MAX_FDS {
            return Err(SpawnError::TooManyPaths(MAX_FDS));
        }
        let host_path = |e: rustix::io::Errno| SpawnError::HostPath {
            path: p.clone(),
            source: e.into(),
        };
        let fd = match how {
            Open::Idmapped { read_only } => {
                let ns = match &userns {
                    Some(ns) => ns,
                    None => {
                        let path = format!("/proc/{pid}/ns/user");
                        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
                        let ns = rustix::fs::open(path.as_str(), flags, Mode::empty());
                        userns.insert(ns.map_err(host_path)?)
                    }
                };
                idmapped_tree(Path::new(p.as_str()), ns.as_fd(), read_only).map_err(host_path)?
            }
            Open::Path => rustix::fs::open(
                in_namespace_of(pid, Path::new(p.as_str())),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(host_path)?,
        };
        *p = fd_path(fds.len());
        fds.push(fd);
        Ok(())
    };
    let lower = match writable {
        true => Open::Idmapped { read_only: true },
        false => Open::Path,
    };
    take(&mut setup.staging_dir, Open::Path)?;
    take(&mut setup.dev_template, Open::Path)?;
    take(&mut setup.etc_template, lower)?;
    if let Image::Dir(dir) = &mut setup.image {
        take(dir, lower)?;
    }
    if writable && setup.image == Image::Host {
        let mut usr = "/usr".to_string();
        take(&mut usr, lower)?;
        setup.usr_dir = Some(usr);
    }
    if let Some(input) = &mut setup.input_dir {
        take(input, Open::Path)?;
    }
    for m in &mut setup.mounts {
        let how = match m.sandbox_ids {
            true => Open::Idmapped {
                read_only: m.read_only,
            },
            false => Open::Path,
        };
        take(&mut m.source, how)?;
    }
    setup.path_fds = fds.len();
    Ok(fds)
}

/// How [`open_for`] hands a host path over.
#[derive(Clone, Copy)]
enum Open {
    /// An `O_PATH` descriptor the init binds from.
    Path,
    /// A detached idmapped tree the init attaches.
    Idmapped { read_only: bool },
}

/// A detached (nosuid, nodev, and read-only if asked) copy of the host's mount tree at
/// `path`, idmapped through the sandbox's user namespace `userns`: files
/// the host's root owns show as owned by the sandbox's root (the ids the
/// sandbox maps), so a writable root's overlay over them lets a root-mode
/// sandbox change `/usr/local` or `/etc` in its own upper layer, as it
/// could on a machine of its own. Unmapped, they would belong to nobody
/// and be closed to it. Made by the host (root in the filesystem's user
/// namespace, which idmapping needs) from its own namespace (a clone
/// needs a mount of the caller's); the init attaches it in its own
/// namespace before the overlay uses it (`init/rootfs.rs`).
fn idmapped_tree(path: &Path, ns: BorrowedFd<'_>, read_only: bool) -> rustix::io::Result<OwnedFd> {
    use rustix::mount::{open_tree, OpenTreeFlags};
    let tree = open_tree(
        rustix::fs::CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP
            | libc::MOUNT_ATTR_NOSUID
            | libc::MOUNT_ATTR_NODEV
            | if read_only {
                libc::MOUNT_ATTR_RDONLY
            } else {
                0
            },
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    // SAFETY: the attribute struct outlives the call, whose size it is;
    // the path is an empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        return Err(
            rustix::io::Errno::from_io_error(&std::io::Error::last_os_error())
                .unwrap_or(rustix::io::Errno::INVAL),
        );
    }
    Ok(tree)
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

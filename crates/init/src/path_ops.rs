//! The path operations themselves, on paths already resolved in the
//! sandbox's own view: blocking, run off the protocol loop one at a time
//! (`files`) or many in a row (`batch`). The init holds no capability, so
//! none of them can do what the sandbox's user could not.

use crate::conn::io_error;
use crate::files::{lstat, lstat_with};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use warden_protocol::{DirEntry, Response};

fn fail(p: &Path, e: std::io::Error) -> Response {
    io_error(&p.display().to_string(), &e)
}

fn done(p: &Path, r: std::io::Result<()>) -> Response {
    match r {
        Ok(()) => Response::Done,
        Err(e) => fail(p, e),
    }
}

pub fn stat(p: &Path) -> Response {
    match lstat(p) {
        Ok(st) => Response::Stat(st),
        Err(e) => fail(p, e),
    }
}

pub fn list_dir(p: &Path) -> Response {
    let rd = match std::fs::read_dir(p) {
        Ok(rd) => rd,
        Err(e) => return fail(p, e),
    };
    let mut out = Vec::new();
    let mut meta_left = warden_protocol::META_LIST_BYTES;
    for ent in rd {
        let ent = match ent {
            Ok(e) => e,
            Err(e) => return fail(p, e),
        };
        // An entry that vanished between readdir and lstat is skipped.
        if let Ok(st) = lstat_with(&ent.path(), meta_left > 0) {
            let used: usize = st.meta.iter().map(|(k, v)| k.len() + v.len()).sum();
            meta_left = meta_left.saturating_sub(used);
            out.push(DirEntry {
                name: ent.file_name().as_bytes().to_vec(),
                stat: st,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Response::Entries(out)
}

pub fn mkdir(p: &Path, parents: bool) -> Response {
    let r = if parents {
        std::fs::create_dir_all(p)
    } else {
        std::fs::create_dir(p)
    };
    done(p, r)
}

pub fn remove(p: &Path, recursive: bool) -> Response {
    let r = match std::fs::symlink_metadata(p) {
        // remove_dir_all never follows symlinks inside the tree.
        Ok(md) if md.is_dir() && recursive => std::fs::remove_dir_all(p),
        Ok(md) if md.is_dir() => std::fs::remove_dir(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    };
    done(p, r)
}

pub fn rename(from: &Path, to: &Path) -> Response {
    match std::fs::rename(from, to) {
        Ok(()) => Response::Done,
        Err(e) => io_error(&format!("{} -> {}", from.display(), to.display()), &e),
    }
}

pub fn symlink(target: &[u8], p: &Path) -> Response {
    let target = std::ffi::OsStr::from_bytes(target);
    done(p, std::os::unix::fs::symlink(target, p))
}

/// Sets the mode (not a symlink's: Linux has none to set) and the
/// modification time (a symlink's own). A path swapped for a link
/// meanwhile leads only where the sandbox's own user could go.
pub fn set_meta(p: &Path, mode: Option<u32>, mtime_ns: Option<i64>) -> Response {
    let md = match std::fs::symlink_metadata(p) {
        Ok(md) => md,
        Err(e) => return fail(p, e),
    };
    if let Some(mode) = mode.filter(|_| !md.file_type().is_symlink()) {
        if md.mode() & 0o7777 != mode & 0o7777 {
            let perms = std::fs::Permissions::from_mode(mode & 0o7777);
            if let Err(e) = std::fs::set_permissions(p, perms) {
                return fail(p, e);
            }
        }
    }
    if let Some(ns) = mtime_ns {
        let r = rustix::fs::utimensat(
            rustix::fs::CWD,
            p,
            &mtime_only(ns),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        );
        if let Err(e) = r {
            return fail(p, e.into());
        }
    }
    Response::Done
}

/// Times that set the modification time to `ns` and leave the access
/// time alone.
fn mtime_only(ns: i64) -> rustix::fs::Timestamps {
    use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: ns.div_euclid(1_000_000_000),
            tv_nsec: ns.rem_euclid(1_000_000_000) as _,
        },
    }
}

/// Writes a whole file as an atomic write does: into `tmp` (made here,
/// never through a link), with exactly `mode` and dated `mtime_ns`, then
/// renamed over `p`. Nothing is left at `tmp` on failure.
pub fn put_file(p: &Path, tmp: &Path, (mode, mtime_ns): (u32, i64), data: &[u8]) -> Response {
    use std::io::Write;
    let written = (|| {
        let mut file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)?;
        let made = (|| {
            // Exact whatever the umask.
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
            file.write_all(data)?;
            rustix::fs::futimens(&file, &mtime_only(mtime_ns))?;
            std::fs::rename(tmp, p)
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        made
    })();
    done(p, written)
}

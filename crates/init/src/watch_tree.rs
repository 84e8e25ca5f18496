//! The inotify side of a `Watch`: which directories are watched under which
//! relative names, and how raw inotify events become `FsEvent`s.
//!
//! Every directory is opened without following any symlink (from `/` for
//! the watched one, from the watched one for those below it) and the watch
//! is added on the opened directory itself through `/proc/self/fd`, so what
//! is watched is exactly what was checked, whatever the sandbox swaps in
//! meanwhile. The init runs inside the sandbox's own root in every tier, so
//! no path it resolves can reach the host in the first place; refusing
//! symlinks keeps the relative names honest too.

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use warden_protocol::{ErrorKind, FsEvent, FsEventKind, Response};

/// Directories one recursive watch may cover (one inotify watch each).
pub const MAX_DIRS: usize = 8192;
/// Longest relative name of a watched directory (PATH_MAX): keeps every
/// event far below a frame's and a credit window's size.
pub const MAX_REL: usize = 4096;
/// Raw events taken from the inotify fd per read round.
const MAX_READ: usize = 4096;

/// What each watched directory reports (as fsnotify asks for).
fn mask() -> WatchFlags {
    WatchFlags::CREATE
        | WatchFlags::MOVED_TO
        | WatchFlags::MOVED_FROM
        | WatchFlags::MODIFY
        | WatchFlags::DELETE
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
}

/// Why a watch ends on its own (or cannot start).
#[derive(Debug)]
pub enum End {
    Removed,
    Overflow,
    TooManyDirs,
    TooDeep,
    Os(String, std::io::Error),
}

impl End {
    pub fn response(self) -> Response {
        match self {
            End::Removed => Response::error(ErrorKind::Io, "the watched directory was removed"),
            End::Overflow => Response::error(ErrorKind::Io, "event queue overflowed"),
            End::TooManyDirs => Response::error(
                ErrorKind::TooLarge,
                format!("the watched tree has more than {MAX_DIRS} directories"),
            ),
            End::TooDeep => Response::error(
                ErrorKind::TooLarge,
                format!("a directory in the watched tree is nested deeper than {MAX_REL} bytes"),
            ),
            End::Os(context, e) => match e.raw_os_error() {
                // Out of inotify instances or watches (per-user kernel limits).
                Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOSPC) => Response::error(
                    ErrorKind::TooLarge,
                    format!("{context}: inotify limit reached ({e})"),
                ),
                Some(libc::ELOOP) => Response::error(
                    ErrorKind::PermissionDenied,
                    format!("{context}: is or passes through a symlink (watches do not follow symlinks)"),
                ),
                _ => crate::conn::io_error(&context, &e),
            },
        }
    }
}

/// One inotify event, copied out of the kernel's buffer.
pub struct RawEvent {
    wd: i32,
    mask: ReadFlags,
    name: Option<Vec<u8>>,
}

impl RawEvent {
    /// Whether handling it may scan directories (so belongs off the loop).
    pub fn may_scan(&self) -> bool {
        self.mask.contains(ReadFlags::ISDIR)
            && self
                .mask
                .intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO)
    }
}

pub struct Tree {
    inotify: Arc<OwnedFd>,
    /// The watched directory, by path and identity. It is not kept open:
    /// an open descriptor would pin it, and the kernel reports a removed
    /// directory's `IN_DELETE_SELF` only once nothing pins it any more.
    root: PathBuf,
    root_id: (u64, u64),
    recursive: bool,
    root_wd: i32,
    /// Watch descriptor -> name relative to the watched directory.
    dirs: HashMap<i32, Vec<u8>>,
}

impl Tree {
    /// Opens `path` strictly, watches it and (when recursive) every
    /// directory below it. Blocking.
    pub fn open(path: &Path, recursive: bool) -> Result<Tree, End> {
        let ctx = || path.display().to_string();
        let root = open_dir_strict(path).map_err(|e| End::Os(ctx(), e))?;
        let st = rustix::fs::fstat(&root).map_err(|e| End::Os(ctx(), e.into()))?;
        let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| End::Os(ctx(), e.into()))?;
        let root_wd = add_watch(&inotify, root.as_fd()).map_err(|e| End::Os(ctx(), e))?;
        drop(root);
        let mut tree = Tree {
            inotify: Arc::new(inotify),
            root: path.to_path_buf(),
            root_id: (st.st_dev, st.st_ino),
            recursive,
            root_wd,
            dirs: HashMap::from([(root_wd, Vec::new())]),
        };
        if recursive {
            tree.add_tree(Vec::new(), None)?;
        }
        Ok(tree)
    }

    pub fn inotify(&self) -> Arc<OwnedFd> {
        self.inotify.clone()
    }

    /// Turns raw events into changes, watching new directories as they
    /// appear (and reporting what is already in them, which was created
    /// before their watch existed).
    pub fn apply(&mut self, events: Vec<RawEvent>, out: &mut Vec<FsEvent>) -> Result<(), End> {
        for ev in events {
            if ev.mask.contains(ReadFlags::QUEUE_OVERFLOW) {
                return Err(End::Overflow);
            }
            if ev.mask.contains(ReadFlags::IGNORED) {
                if ev.wd == self.root_wd {
                    return Err(End::Removed);
                }
                self.dirs.remove(&ev.wd);
                continue;
            }
            // A directory already dropped (moved away) may still report.
            let Some(dir) = self.dirs.get(&ev.wd) else {
                continue;
            };
            let Some(name) = ev.name else {
                // About a watched directory itself. Below the root, its
                // parent's watch reports the same change under its name.
                if ev.wd == self.root_wd {
                    if ev
                        .mask
                        .intersects(ReadFlags::DELETE_SELF | ReadFlags::UNMOUNT)
                    {
                        return Err(End::Removed);
                    }
                    if ev.mask.contains(ReadFlags::ATTRIB) {
                        out.push(event(FsEventKind::Chmod, Vec::new()));
                    }
                }
                continue;
            };
            let rel = join(dir, &name);
            let is_dir = ev.mask.contains(ReadFlags::ISDIR);
            if ev.mask.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) {
                out.push(event(FsEventKind::Create, rel.clone()));
                if is_dir && self.recursive {
                    self.add_new(rel.clone(), out)?;
                }
            }
            if ev.mask.contains(ReadFlags::MODIFY) {
                out.push(event(FsEventKind::Write, rel.clone()));
            }
            if ev.mask.contains(ReadFlags::DELETE) {
                out.push(event(FsEventKind::Remove, rel.clone()));
            }
            if ev.mask.contains(ReadFlags::MOVED_FROM) {
                out.push(event(FsEventKind::Rename, rel.clone()));
                if is_dir && self.recursive {
                    self.drop_subtree(&rel);
                }
            }
            if ev.mask.contains(ReadFlags::ATTRIB) {
                out.push(event(FsEventKind::Chmod, rel));
            }
        }
        Ok(())
    }

    /// Watches a directory that just appeared at `rel`, and everything
    /// below it, reporting what is already there.
    fn add_new(&mut self, rel: Vec<u8>, out: &mut Vec<FsEvent>) -> Result<(), End> {
        if rel.len() > MAX_REL {
            return Err(End::TooDeep);
        }
        self.add_tree(rel, Some(out))
    }

    /// Watches the directory `rel` and every directory below it; with
    /// `out`, reports every entry found as created. Each directory is
    /// watched before it is read, so nothing created meanwhile is missed.
    /// The pending ones are kept by name, not open: a wide tree must not
    /// cost a descriptor per directory (nor a deep one the stack).
    fn add_tree(&mut self, rel: Vec<u8>, mut out: Option<&mut Vec<FsEvent>>) -> Result<(), End> {
        let mut stack = vec![rel];
        while let Some(rel) = stack.pop() {
            let Some(fd) = self.watch_dir(&rel)? else {
                continue;
            };
            let Ok(mut dir) = Dir::read_from(&fd) else {
                continue;
            };
            while let Some(ent) = dir.read() {
                // An unreadable rest of a directory is skipped, like one
                // that vanished while being read.
                let Ok(ent) = ent else { break };
                let name = ent.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let child = join(&rel, name);
                let is_dir = match ent.file_type() {
                    FileType::Directory => true,
                    FileType::Unknown => {
                        rustix::fs::statat(&fd, ent.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode).is_dir())
                    }
                    _ => false,
                };
                if let Some(out) = out.as_deref_mut() {
                    out.push(event(FsEventKind::Create, child.clone()));
                }
                if is_dir {
                    if child.len() > MAX_REL {
                        return Err(End::TooDeep);
                    }
                    stack.push(child);
                }
            }
        }
        Ok(())
    }

    /// Opens the directory `rel` and watches it (the root is watched
    /// already); `None` when it is gone or no longer a directory (its
    /// parent's watch reports that).
    fn watch_dir(&mut self, rel: &[u8]) -> Result<Option<OwnedFd>, End> {
        if rel.is_empty() {
            return Ok(self.open_root());
        }
        if self.dirs.len() >= MAX_DIRS {
            return Err(End::TooManyDirs);
        }
        let Some(fd) = self
            .open_root()
            .and_then(|root| open_below(root.as_fd(), rel).ok())
        else {
            return Ok(None);
        };
        match add_watch(&self.inotify, fd.as_fd()) {
            Ok(wd) => {
                self.dirs.insert(wd, rel.to_vec());
                Ok(Some(fd))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                Err(End::Os(String::from_utf8_lossy(rel).into_owned(), e))
            }
            Err(_) => Ok(None),
        }
    }

    /// The watched directory, if it is still at its path (moved away, new
    /// directories in it can no longer be opened by name, and are not
    /// watched; what is watched already still reports).
    fn open_root(&self) -> Option<OwnedFd> {
        let fd = open_dir_strict(&self.root).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        ((st.st_dev, st.st_ino) == self.root_id).then_some(fd)
    }

    /// A directory moved away: its watches would report under a stale name.
    fn drop_subtree(&mut self, rel: &[u8]) {
        let ino = &self.inotify;
        self.dirs.retain(|wd, name| {
            let inside =
                name.starts_with(rel) && (name.len() == rel.len() || name[rel.len()] == b'/');
            if inside {
                let _ = inotify::remove_watch(ino, *wd);
            }
            !inside
        });
    }
}

fn event(kind: FsEventKind, name: Vec<u8>) -> FsEvent {
    FsEvent { kind, name }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
    v.extend_from_slice(dir);
    v.push(b'/');
    v.extend_from_slice(name);
    v
}

/// Reads what is queued on the (non-blocking) inotify fd.
pub fn read_events(fd: &OwnedFd) -> std::io::Result<Vec<RawEvent>> {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    let mut events = Vec::new();
    // Stop only between reads: events already read into `buf` would be lost.
    while events.len() < MAX_READ || !reader.is_buffer_empty() {
        match reader.next() {
            Ok(ev) => events.push(RawEvent {
                wd: ev.wd(),
                mask: ev.events(),
                name: ev.file_name().map(|n| n.to_bytes().to_vec()),
            }),
            Err(Errno::AGAIN) if !events.is_empty() => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(events)
}

/// Adds a watch on an open directory (through its /proc/self/fd link, which
/// the kernel follows to the directory itself, never to a path).
fn add_watch(ino: &OwnedFd, dir: BorrowedFd<'_>) -> std::io::Result<i32> {
    let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
    Ok(inotify::add_watch(ino, link, mask())?)
}

/// A handle on a directory (or, with NOFOLLOW, on a symlink itself).
const PATH_FLAGS: OFlags = OFlags::PATH.union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// Opens a directory component by component without following symlinks.
fn open_dir_strict(path: &Path) -> std::io::Result<OwnedFd> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => names.push(n),
            _ => return Err(std::io::ErrorKind::InvalidInput.into()),
        }
    }
    let root = rustix::fs::open("/", PATH_FLAGS | OFlags::DIRECTORY, Mode::empty())?;
    walk(root, &names)
}

/// Opens the directory `rel` (`/`-separated, not empty) below `root`.
fn open_below(root: BorrowedFd<'_>, rel: &[u8]) -> std::io::Result<OwnedFd> {
    let names: Vec<&OsStr> = rel.split(|b| *b == b'/').map(OsStr::from_bytes).collect();
    let start = rustix::fs::openat(root, c".", PATH_FLAGS, Mode::empty())?;
    walk(start, &names)
}

/// Walks `names` down from `dir`; returns the last one opened for reading.
fn walk(mut dir: OwnedFd, names: &[&OsStr]) -> std::io::Result<OwnedFd> {
    for name in names {
        dir = openat_dir(&dir, name)?;
    }
    let read = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(&dir, c".", read, Mode::empty())?)
}

/// Opens the directory `name` in `dir` as a handle, refusing a symlink
/// with ELOOP. Checked on what was opened, not by name, so nothing can be
/// swapped in between; and not with O_DIRECTORY|O_NOFOLLOW, which older
/// gVisor releases resolve by following the symlink.
fn openat_dir(dir: &OwnedFd, name: &OsStr) -> std::io::Result<OwnedFd> {
    let fd = rustix::fs::openat(dir, name, PATH_FLAGS, Mode::empty())?;
    match FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) {
        FileType::Directory => Ok(fd),
        FileType::Symlink => Err(Errno::LOOP.into()),
        _ => Err(Errno::NOTDIR.into()),
    }
}

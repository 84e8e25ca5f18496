//! File operations, executed by the init inside the sandbox: every path is
//! resolved in the sandbox's own mount namespace and root, with the sandbox
//! user's permissions, so no symlink can lead to anything the sandbox could
//! not reach itself.

use crate::conn::io_error;
use crate::path_ops;
use crate::State;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use warden_protocol::{ErrorKind, FileKind, FileStat, Response, CHUNK};

pub(crate) struct PendingWrite {
    pub(crate) file: tokio::fs::File,
    tmp: PathBuf,
    dest: PathBuf,
    /// A chunk failed (the temp file is gone): later ones fail too.
    pub(crate) failed: bool,
}

/// An open write. Each request runs as a task of its own, so a host that
/// sends the next chunks before the first is answered (to keep the pipe
/// full) has them queue here: the lock is fair, and each task asks for it
/// in its first poll, in the order the requests came.
pub(crate) type OpenWrite = Rc<tokio::sync::Mutex<PendingWrite>>;

#[derive(Default)]
pub struct Files {
    writes: RefCell<HashMap<u32, OpenWrite>>,
    next_handle: std::cell::Cell<u32>,
}

/// Resolves a request path: absolute, or relative to the sandbox workdir.
pub fn resolve(state: &State, path: &str) -> Result<PathBuf, Response> {
    if path.is_empty() || path.contains('\0') {
        return Err(Response::error(
            ErrorKind::BadRequest,
            "path is empty or contains NUL",
        ));
    }
    let p = PathBuf::from(path);
    Ok(if p.is_absolute() {
        p
    } else {
        PathBuf::from(&state.cfg.workdir).join(p)
    })
}

fn kind_of(ft: std::fs::FileType) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        FileKind::File
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_socket() {
        FileKind::Socket
    } else if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Other
    }
}

pub fn stat_of(md: &Metadata, link_target: Option<Vec<u8>>) -> FileStat {
    FileStat {
        kind: kind_of(md.file_type()),
        size: md.size(),
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        nlink: md.nlink(),
        mtime: md.mtime(),
        link_target,
        resolved: None,
        meta: Vec::new(),
    }
}

pub(crate) fn lstat(path: &std::path::Path) -> std::io::Result<FileStat> {
    lstat_with(path, true)
}

/// `lstat`, with the file's metadata when `meta` (a listing stops asking
/// once it has carried [`warden_protocol::META_LIST_BYTES`]).
pub(crate) fn lstat_with(path: &std::path::Path, meta: bool) -> std::io::Result<FileStat> {
    let md = std::fs::symlink_metadata(path)?;
    if !md.file_type().is_symlink() {
        let mut st = stat_of(&md, None);
        if meta {
            st.meta = crate::meta::read(path);
        }
        return Ok(st);
    }
    let target = std::fs::read_link(path)?.as_os_str().as_bytes().to_vec();
    let mut st = stat_of(&md, Some(target));
    // Followed to its end in the sandbox's own view (E2B reports a link by
    // what it leads to); a dangling link has no end.
    st.resolved = std::fs::canonicalize(path).ok().and_then(|end| {
        let md = std::fs::metadata(&end).ok()?;
        Some(warden_protocol::Resolved {
            path: end.as_os_str().as_bytes().to_vec(),
            kind: kind_of(md.file_type()),
            mode: md.mode() & 0o7777,
        })
    });
    Ok(st)
}

/// Runs a blocking filesystem operation off the protocol loop.
async fn blocking<F>(f: F) -> Response
where
    F: FnOnce() -> Response + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Response::error(ErrorKind::Io, format!("file operation failed: {e}")))
}

/// Runs `op` on `path` (resolved) off the protocol loop.
async fn at<F>(state: &State, path: &str, op: F) -> Response
where
    F: FnOnce(&std::path::Path) -> Response + Send + 'static,
{
    match resolve(state, path) {
        Ok(p) => blocking(move || op(&p)).await,
        Err(e) => e,
    }
}

pub async fn stat(state: &State, path: &str) -> Response {
    at(state, path, path_ops::stat).await
}

pub async fn list_dir(state: &State, path: &str) -> Response {
    at(state, path, path_ops::list_dir).await
}

pub async fn mkdir(state: &State, path: &str, parents: bool) -> Response {
    at(state, path, move |p| path_ops::mkdir(p, parents)).await
}

pub async fn remove(state: &State, path: &str, recursive: bool) -> Response {
    at(state, path, move |p| path_ops::remove(p, recursive)).await
}

pub async fn rename(state: &State, from: &str, to: &str) -> Response {
    let t = match resolve(state, to) {
        Ok(t) => t,
        Err(e) => return e,
    };
    at(state, from, move |f| path_ops::rename(f, &t)).await
}

pub async fn symlink(state: &State, target: Vec<u8>, path: &str) -> Response {
    at(state, path, move |p| path_ops::symlink(&target, p)).await
}

pub async fn set_meta(
    state: &State,
    path: &str,
    mode: Option<u32>,
    mtime_ns: Option<i64>,
) -> Response {
    at(state, path, move |p| path_ops::set_meta(p, mode, mtime_ns)).await
}

/// Opens `path` for reading as `ReadFile` does (strictly: no symlink on
/// the way and, unless `links_ok`, no other link to it): a regular file,
/// or the error to answer.
pub(crate) async fn open_regular(
    state: &State,
    path: &str,
    strict: bool,
    links_ok: bool,
) -> Result<tokio::fs::File, Response> {
    let p = resolve(state, path)?;
    let opened = if strict {
        open_strict(&p)
    } else {
        // Non-blocking, so a FIFO planted at the path cannot hang the open
        // (and with it every other request); the type is checked next.
        std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&p)
    };
    let file = tokio::fs::File::from_std(opened.map_err(|e| io_error(path, &e))?);
    // Only regular files: a FIFO or device would block or never end.
    match file.metadata().await {
        Ok(md) if strict && !links_ok && md.is_file() && md.nlink() != 1 => Err(Response::error(
            ErrorKind::PermissionDenied,
            format!("{path} has {} links", md.nlink()),
        )),
        Ok(md) if md.is_file() => Ok(file),
        Ok(md) if md.is_dir() => Err(Response::error(
            ErrorKind::IsADirectory,
            format!("{path} is a directory"),
        )),
        Ok(_) => Err(Response::error(
            ErrorKind::Unsupported,
            format!("{path} is not a regular file"),
        )),
        Err(e) => Err(io_error(path, &e)),
    }
}

/// Streams a regular file's bytes under flow control.
pub async fn read(
    state: Rc<State>,
    id: u32,
    path: String,
    offset: u64,
    limit: Option<u64>,
    strict: bool,
    links_ok: bool,
) {
    let mut file = match open_regular(&state, &path, strict, links_ok).await {
        Ok(f) => f,
        Err(e) => return state.conn.send(id, e).await,
    };
    if offset > 0 {
        if let Err(e) = file.seek(std::io::SeekFrom::Start(offset)).await {
            return state.conn.send(id, io_error(&path, &e)).await;
        }
    }
    let credit = state.conn.open_stream(id);
    let mut left = limit.unwrap_or(u64::MAX);
    let mut buf = vec![0u8; READ_CHUNK];
    let end = loop {
        if left == 0 {
            break Response::Done;
        }
        let want = (left.min(READ_CHUNK as u64)) as usize;
        match file.read(&mut buf[..want]).await {
            Ok(0) => break Response::Done,
            Ok(n) => {
                left -= n as u64;
                state
                    .conn
                    .send_payload(id, &credit, Response::Data(buf[..n].to_vec()))
                    .await;
            }
            Err(e) => break io_error(&path, &e),
        }
    };
    state.conn.close_stream(id);
    state.conn.send(id, end).await;
}

/// Bytes read (and sent) at once: each read is a trip to the blocking
/// pool, so a quarter of the stream's window per read moves a large file
/// several times faster than `CHUNK`-sized ones while four stay in flight.
const READ_CHUNK: usize = 4 * CHUNK;

/// Opens without following any symlink on the way, and without blocking
/// on a FIFO planted at the path.
fn open_strict(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags =
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    match rustix::fs::openat2(
        rustix::fs::CWD,
        p,
        flags,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        // Kernels without openat2, e.g. gVisor releases before 2023.
        Err(rustix::io::Errno::NOSYS) => open_walk(p, flags),
        Err(e) => Err(e.into()),
    }
}

/// `open_strict` one component at a time: each directory is opened with
/// O_NOFOLLOW|O_DIRECTORY, which fails on a symlink, and so does the final
/// O_NOFOLLOW open.
fn open_walk(p: &std::path::Path, flags: rustix::fs::OFlags) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    use std::path::Component;
    let parts: Vec<_> = p.components().collect();
    let Some((Component::Normal(last), dirs)) = parts.split_last() else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open("/", dir_flags, Mode::empty())?;
    for c in dirs {
        match c {
            Component::RootDir => {}
            Component::Normal(name) => {
                dir = rustix::fs::openat(&dir, *name, dir_flags, Mode::empty())?
            }
            _ => return Err(std::io::ErrorKind::InvalidInput.into()),
        }
    }
    Ok(std::fs::File::from(rustix::fs::openat(
        &dir,
        *last,
        flags,
        Mode::empty(),
    )?))
}

pub async fn write_open(
    state: &State,
    path: &str,
    mode: u32,
    meta: Vec<(String, String)>,
) -> Response {
    let dest = match resolve(state, path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let (handle, tmp) = match temp_for(state, &dest) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW);
    match opts.open(&tmp).await {
        Ok(file) => {
            // Metadata first: writing a user xattr needs write permission,
            // which the final mode may not give.
            if let Err(e) = crate::meta::set(&file, &meta) {
                drop(file);
                let _ = tokio::fs::remove_file(&tmp).await;
                return io_error(path, &e);
            }
            // Make the final mode exact whatever the umask.
            let _ = file
                .set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
                .await;
            let w = PendingWrite {
                file,
                tmp,
                dest,
                failed: false,
            };
            state
                .files
                .writes
                .borrow_mut()
                .insert(handle, Rc::new(tokio::sync::Mutex::new(w)));
            Response::Opened { handle }
        }
        Err(e) => io_error(path, &e),
    }
}

/// A new handle and the temp file, beside `dest`, an atomic write of it
/// goes to first.
pub(crate) fn temp_for(state: &State, dest: &std::path::Path) -> Result<(u32, PathBuf), Response> {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(Response::error(
            ErrorKind::BadRequest,
            format!("{} names no file", dest.display()),
        ));
    };
    let handle = state.files.next_handle.get().wrapping_add(1);
    state.files.next_handle.set(handle);
    let tmp = dir.join(format!(
        ".{}.warden-{}-{handle}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    Ok((handle, tmp))
}

pub(crate) fn no_handle(handle: u32) -> Response {
    Response::error(ErrorKind::NotFound, format!("no open write {handle}"))
}

/// Open write `handle`, cloned out of the registry (so no `RefCell`
/// borrow spans an await).
pub(crate) fn open_write(state: &State, handle: u32) -> Option<OpenWrite> {
    state.files.writes.borrow().get(&handle).cloned()
}

pub async fn write_chunk(state: &State, handle: u32, data: Vec<u8>) -> Response {
    let Some(open) = open_write(state, handle) else {
        return no_handle(handle);
    };
    let mut w = open.lock().await;
    if w.failed {
        return no_handle(handle);
    }
    match w.file.write_all(&data).await {
        Ok(()) => Response::Done,
        Err(e) => write_failed(state, handle, &mut w, &e).await,
    }
}

/// Ends write `handle` after `e`: its temp file removed, later requests
/// for it refused; the answer that says why.
pub(crate) async fn write_failed(
    state: &State,
    handle: u32,
    w: &mut PendingWrite,
    e: &std::io::Error,
) -> Response {
    w.failed = true;
    state.files.writes.borrow_mut().remove(&handle);
    let _ = tokio::fs::remove_file(&w.tmp).await;
    io_error(&w.dest.display().to_string(), e)
}

pub async fn write_finish(state: &State, handle: u32, commit: bool) -> Response {
    let Some(open) = state.files.writes.borrow_mut().remove(&handle) else {
        return no_handle(handle);
    };
    // After every chunk sent before this request.
    let mut guard = open.lock().await;
    if guard.failed {
        return no_handle(handle);
    }
    guard.failed = true;
    let w = &mut *guard;
    if !commit {
        let _ = tokio::fs::remove_file(&w.tmp).await;
        return Response::Done;
    }
    if let Err(e) = w.file.flush().await {
        let _ = tokio::fs::remove_file(&w.tmp).await;
        return io_error(&w.dest.display().to_string(), &e);
    }
    if let Err(e) = tokio::fs::rename(&w.tmp, &w.dest).await {
        let _ = tokio::fs::remove_file(&w.tmp).await;
        return io_error(&w.dest.display().to_string(), &e);
    }
    let dest = w.dest.clone();
    blocking(move || match lstat(&dest) {
        Ok(st) => Response::Stat(st),
        Err(e) => io_error(&dest.display().to_string(), &e),
    })
    .await
}

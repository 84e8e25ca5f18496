//! Files passed over the control channel (see `warden_protocol::passing`):
//! a write whose bytes come as a file (`WriteFromFile`: the kernel copies
//! them into the open write, so a large file the host already has on disk,
//! a snapshot's at a resume, costs no frames and no copies in either
//! process), and a read whose bytes go into a pipe the host passed
//! (`ReadToFile`: a snapshot's files, at a pause).

use crate::conn::io_error;
use crate::files::{no_handle, open_regular, open_write, write_failed};
use crate::State;
use std::os::fd::OwnedFd;
use tokio::io::AsyncWriteExt;
use warden_protocol::{ErrorKind, Response};

/// Appends all of `file` to open write `handle`; `file` is what came with
/// the request (none: the write is refused, `Unsupported`).
pub async fn write_from_file(state: &State, handle: u32, file: Option<OwnedFd>) -> Response {
    let Some(open) = open_write(state, handle) else {
        return no_handle(handle);
    };
    let mut w = open.lock().await;
    if w.failed {
        return no_handle(handle);
    }
    // A channel that did not pass it: the write ends (nothing of it is
    // left), `Unsupported`, and the host sends the bytes instead.
    let Some(src) = file else {
        let e = std::io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        return write_failed(state, handle, &mut w, &e).await;
    };
    let copied = async {
        // What earlier chunks queued in the file's buffer goes first.
        w.file.flush().await?;
        let out = w.file.try_clone().await?.into_std().await;
        tokio::task::spawn_blocking(move || copy_all(&src, &out))
            .await
            .map_err(std::io::Error::other)?
    }
    .await;
    match copied {
        Ok(()) => Response::Done,
        Err(e) => write_failed(state, handle, &mut w, &e).await,
    }
}

/// `sendfile` from `src`'s offset to its end, onto `out` at its offset (a
/// limit on `out`'s size ends it with that error).
fn copy_all(src: &OwnedFd, out: &std::fs::File) -> std::io::Result<()> {
    loop {
        match rustix::fs::sendfile(out, src, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Copies regular file `path` (opened as `ReadFile` opens it), at most
/// `limit` bytes of it, into `pipe`, what came with the request (none: the
/// read is refused, `Unsupported`), and closes the pipe: `Copied`.
pub async fn read_to_file(
    state: &State,
    (path, limit, strict, links_ok): (String, u64, bool, bool),
    pipe: Option<OwnedFd>,
) -> Response {
    let Some(pipe) = pipe else {
        return Response::error(ErrorKind::Unsupported, warden_protocol::NO_PIPE);
    };
    let file = match open_regular(state, &path, strict, links_ok).await {
        Ok(f) => f.into_std().await,
        Err(e) => return e,
    };
    // The pipe is closed (dropped with the closure) before the answer.
    let copied = tokio::task::spawn_blocking(move || copy_up_to(&file, &pipe, limit))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    match copied {
        Ok(bytes) => Response::Copied { bytes },
        Err(e) => io_error(&path, &e),
    }
}

/// `sendfile` from `src`'s start until its end or `limit` bytes; how many.
fn copy_up_to(src: &std::fs::File, out: &OwnedFd, limit: u64) -> std::io::Result<u64> {
    let mut done = 0u64;
    while done < limit {
        let want = (limit - done).min(1 << 30) as usize;
        match rustix::fs::sendfile(out, src, None, want) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

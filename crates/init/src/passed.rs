//! Writes whose bytes come as a file passed over the control channel
//! (`WriteFromFile`, see `warden_protocol::passing`): the kernel copies
//! them into the open write, so a large file the host already has on disk
//! (a snapshot's, at a resume) costs no frames and no copies in either
//! process.

use crate::files::{no_handle, open_write, write_failed};
use crate::State;
use std::os::fd::OwnedFd;
use tokio::io::AsyncWriteExt;
use warden_protocol::Response;

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

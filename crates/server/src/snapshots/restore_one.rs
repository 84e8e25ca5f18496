//! Restoring one path at a time: a large file (handed to the init as a
//! file, or streamed), a link, and what a batch (`restore.rs`) could not
//! settle: a directory or an unwritable file of the image's where the
//! snapshot has something else.

use crate::service::{Error, Result};
use warden_protocol::{Client, ClientError, ErrorKind, FileKind, FileWriter, Request, Response};
use warden_store::{ObjectKind, TenantStore};

use super::Entry;
use futures::StreamExt;

/// Writes one file or link (directories are made before).
pub(super) async fn put(client: &Client, store: &TenantStore, e: &Entry) -> Result<()> {
    match e {
        Entry::File {
            path,
            mode,
            mtime_ns,
            blob,
            sha256,
            ..
        } => write_file(client, store, path, (*mode, *mtime_ns), blob, sha256).await,
        Entry::Symlink {
            path,
            mtime_ns,
            target,
        } => make_link(client, path, target, *mtime_ns).await,
        Entry::Dir { .. } => Ok(()),
    }
}

pub(super) fn remote_kind(e: &ClientError) -> Option<ErrorKind> {
    match e {
        ClientError::Remote(r) => Some(r.kind),
        _ => None,
    }
}

/// A sandbox's refusal while restoring, said as what it means here.
pub(super) fn failed(path: &str, e: ClientError) -> Error {
    match remote_kind(&e) {
        Some(ErrorKind::NoSpace) | Some(ErrorKind::TooLarge) => Error::invalid(format!(
            "the snapshot's files do not fit in the new sandbox ({path}): \
             ask for a larger limits.disk_mb"
        )),
        _ => match e {
            ClientError::Remote(r) => Error::invalid(format!(
                "the snapshot could not be restored at {path}: {}",
                r.message
            )),
            other => Error::Sandbox(other),
        },
    }
}

pub(super) async fn make_dir(client: &Client, path: &str) -> Result<()> {
    match client.mkdir(path, false).await {
        Ok(()) => Ok(()),
        Err(e) if remote_kind(&e) == Some(ErrorKind::AlreadyExists) => {
            let st = client.stat(path).await.map_err(|e| failed(path, e))?;
            if st.kind == FileKind::Dir {
                return Ok(());
            }
            client
                .remove(path, false)
                .await
                .map_err(|e| failed(path, e))?;
            client.mkdir(path, false).await.map_err(|e| failed(path, e))
        }
        Err(e) => Err(failed(path, e)),
    }
}

async fn make_link(client: &Client, path: &str, target: &str, mtime_ns: i64) -> Result<()> {
    // The same link already there (one the sandbox's set-up made, e.g. the
    // image's `/bin -> usr/bin`, in a directory the user cannot write).
    if let Ok(st) = client.stat(path).await {
        if st.kind == FileKind::Symlink && st.link_target.as_deref() == Some(target.as_bytes()) {
            return Ok(());
        }
    }
    match client.remove(path, true).await {
        Ok(()) => {}
        Err(e) if remote_kind(&e) == Some(ErrorKind::NotFound) => {}
        Err(e) => return Err(failed(path, e)),
    }
    client
        .symlink(target.as_bytes(), path)
        .await
        .map_err(|e| failed(path, e))?;
    client
        .set_meta(path, None, Some(mtime_ns))
        .await
        .map_err(|e| failed(path, e))
}

async fn write_file(
    client: &Client,
    store: &TenantStore,
    path: &str,
    (mode, mtime_ns): (u32, i64),
    blob: &str,
    sha256: &str,
) -> Result<()> {
    let w = match client.write_open(path, mode, Vec::new()).await {
        Ok(w) => w,
        // A directory where the file goes (the image's): replaced.
        Err(e) if remote_kind(&e) == Some(ErrorKind::IsADirectory) => {
            client
                .remove(path, true)
                .await
                .map_err(|e| failed(path, e))?;
            client
                .write_open(path, mode, Vec::new())
                .await
                .map_err(|e| failed(path, e))?
        }
        // A file the sandbox's user cannot write that the new sandbox's
        // set-up made just as the source's did (its user's line in
        // `/etc/passwd`): restored already.
        Err(e)
            if remote_kind(&e) == Some(ErrorKind::PermissionDenied)
                && same_content(client, path, sha256).await =>
        {
            return Ok(())
        }
        Err(e) => return Err(failed(path, e)),
    };
    let passing = client.passes_files();
    let copied = match copy_blob(store, w, blob, passing).await {
        // The file did not reach the init (the write is gone there):
        // this channel's files go as frames from now on.
        Err(Error::Sandbox(e)) if passing && remote_kind(&e) == Some(ErrorKind::Unsupported) => {
            tracing::warn!(%path, "a file passed to the init did not arrive: sending its bytes");
            client.stop_passing_files();
            let w = client
                .write_open(path, mode, Vec::new())
                .await
                .map_err(|e| failed(path, e))?;
            copy_blob(store, w, blob, false).await
        }
        other => other,
    };
    copied.map_err(|e| match e {
        Error::Sandbox(c) => failed(path, c),
        other => other,
    })?;
    client
        .set_meta(path, Some(mode), Some(mtime_ns))
        .await
        .map_err(|e| failed(path, e))
}

/// Whether the sandbox's `path` holds exactly the content `sha256`.
async fn same_content(client: &Client, path: &str, sha256: &str) -> bool {
    use sha2::{Digest, Sha256};
    let Ok(mut s) = client.stream(Request::ReadFile {
        path: path.to_string(),
        offset: 0,
        limit: None,
        strict: true,
        links_ok: true,
    }) else {
        return false;
    };
    let mut h = Sha256::new();
    loop {
        match s.next().await {
            Ok(Some(Response::Data(d))) => h.update(&d),
            Ok(Some(Response::Done)) => return hex::encode(h.finalize()) == sha256,
            _ => return false,
        }
    }
}

/// Writes blob `blob` through `w` and commits it (or aborts on failure).
/// Where the channel `passes_files` and the blob is a local file, the init
/// is handed the file and the kernel copies it (a 100 MiB file in tens of
/// milliseconds instead of a hundred frames through both processes).
async fn copy_blob(
    store: &TenantStore,
    mut w: FileWriter<'_>,
    blob: &str,
    passes_files: bool,
) -> Result<()> {
    let copied = async {
        if passes_files {
            if let Some(file) = store.objects().open_local(ObjectKind::Blobs, blob).await? {
                w.write_file(file.into()).await?;
                return Ok(());
            }
        }
        let mut body = store.objects().get_stream(ObjectKind::Blobs, blob).await?;
        while let Some(piece) = body.next().await.transpose()? {
            w.write(&piece).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    match copied {
        Ok(()) => w.commit().await.map(|_| ()).map_err(Error::from),
        Err(e) => {
            w.abort().await;
            Err(e)
        }
    }
}

//! Putting a snapshot's files into a new sandbox, before anyone else can
//! reach it: first what the source had deleted (names a changed directory
//! holds here but did not hold there), then directories, then files and
//! links, then the directories' modes and times (last, so a read-only
//! directory is filled before it becomes read-only).
//!
//! Everything is written by the init as the sandbox's user, so a restore
//! can do nothing the sandbox could not do itself; its bytes count in the
//! new sandbox's disk limit like any other.

use super::{join, Entry, Manifest, Scope};
use crate::service::{Error, Result};
use futures::StreamExt;
use std::collections::HashSet;
use warden_protocol::{Client, ClientError, ErrorKind, FileKind, FileWriter, Request, Response};
use warden_store::{ObjectKind, TenantStore};

/// Requests to the init at once (files written, directories made...).
const PARALLEL: usize = 8;

/// Restores `manifest` into the sandbox behind `client`, leaving alone
/// what `scope` skips (the new sandbox's own mounts). Boxed: the future's
/// type would otherwise spread into every caller's (and trip the
/// compiler's check that they are `Send`).
pub fn restore<'a>(
    client: &'a Client,
    store: &'a TenantStore,
    manifest: &'a Manifest,
    scope: &'a Scope,
) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(restore_all(client, store, manifest, scope))
}

async fn restore_all<'a>(
    client: &'a Client,
    store: &'a TenantStore,
    manifest: &'a Manifest,
    scope: &'a Scope,
) -> Result<()> {
    if manifest.version != super::MANIFEST_VERSION {
        return Err(Error::internal(
            "reading a snapshot",
            format!("manifest version {}", manifest.version),
        ));
    }
    let entries: Vec<&'a Entry> = manifest
        .entries
        .iter()
        .filter(|e| !scope.skips(e.path()))
        .collect();
    // Every step below is a round trip to the init per path; the paths of
    // one step (and of one depth, where parents must come first) go at
    // once, so a small snapshot costs a handful of round trips, not one
    // per directory and step.
    let dirs: Vec<&'a Entry> = entries
        .iter()
        .copied()
        .filter(|e| matches!(e, Entry::Dir { .. }))
        .collect();
    let jobs = dirs
        .iter()
        .map(|e| Box::pin(remove_deleted(client, scope, e)) as Job<'a>)
        .collect();
    all(jobs).await?;
    let levels = by_depth(&dirs);
    for level in &levels {
        let jobs = level
            .iter()
            .map(|e| Box::pin(make_dir(client, e.path())) as Job<'a>)
            .collect();
        all(jobs).await?;
    }
    let jobs = entries
        .iter()
        .map(|e| Box::pin(put(client, store, e)) as Job<'a>)
        .collect();
    all(jobs).await?;
    // Deepest first, so a directory that becomes read-only (or closed to
    // its user) has had everything under it set.
    for level in levels.iter().rev() {
        let jobs = level
            .iter()
            .map(|e| Box::pin(dir_meta(client, e)) as Job<'a>)
            .collect();
        all(jobs).await?;
    }
    Ok(())
}

type Job<'a> = futures::future::BoxFuture<'a, Result<()>>;

/// Runs `jobs`, [`PARALLEL`] at once, each to its end; the first error.
async fn all(jobs: Vec<Job<'_>>) -> Result<()> {
    let done: Vec<Result<()>> = futures::stream::iter(jobs)
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    done.into_iter().collect()
}

/// `dirs` grouped by how deep they are, shallowest first.
fn by_depth<'a>(dirs: &[&'a Entry]) -> Vec<Vec<&'a Entry>> {
    let mut levels: std::collections::BTreeMap<usize, Vec<&'a Entry>> = Default::default();
    for e in dirs {
        levels
            .entry(e.path().matches('/').count())
            .or_default()
            .push(e);
    }
    levels.into_values().collect()
}

/// Gives directory `e` its mode and time.
async fn dir_meta(client: &Client, e: &Entry) -> Result<()> {
    let Entry::Dir {
        path,
        mode,
        mtime_ns,
        ..
    } = e
    else {
        return Ok(());
    };
    // A directory of the image's (another owner's) keeps its own.
    match client.set_meta(path, Some(*mode), Some(*mtime_ns)).await {
        Ok(()) => Ok(()),
        Err(e) if remote_kind(&e) == Some(ErrorKind::PermissionDenied) => Ok(()),
        Err(e) => Err(failed(path, e)),
    }
}

/// Writes one file or link (directories are made before).
async fn put(client: &Client, store: &TenantStore, e: &Entry) -> Result<()> {
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

fn remote_kind(e: &ClientError) -> Option<ErrorKind> {
    match e {
        ClientError::Remote(r) => Some(r.kind),
        _ => None,
    }
}

/// A sandbox's refusal while restoring, said as what it means here.
fn failed(path: &str, e: ClientError) -> Error {
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

/// Removes what directory `d` holds here that the source's did not.
async fn remove_deleted(client: &Client, scope: &Scope, d: &Entry) -> Result<()> {
    let Entry::Dir {
        path: dir, names, ..
    } = d
    else {
        return Ok(());
    };
    let here = match client.list_dir(dir).await {
        Ok(l) => l,
        Err(e)
            if matches!(
                remote_kind(&e),
                Some(ErrorKind::NotFound | ErrorKind::NotADirectory)
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(failed(dir, e)),
    };
    let kept: HashSet<&str> = names.iter().map(String::as_str).collect();
    for entry in here {
        let Ok(name) = std::str::from_utf8(&entry.name) else {
            continue;
        };
        let path = join(dir, name);
        if kept.contains(name) || scope.skips(&path) {
            continue;
        }
        match client.remove(&path, true).await {
            Ok(()) => {}
            Err(e) if remote_kind(&e) == Some(ErrorKind::NotFound) => {}
            Err(e) => return Err(failed(&path, e)),
        }
    }
    Ok(())
}

async fn make_dir(client: &Client, path: &str) -> Result<()> {
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

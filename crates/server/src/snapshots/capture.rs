//! Taking a snapshot's files from a live sandbox: the init's `Changes`
//! walk says what changed, each regular file is read (strictly: no symlink
//! anywhere on its path) and stored as the tenant's blob, found again by
//! its SHA-256 so a content already stored is kept once.

use super::{Entry, Manifest, Scope, Skipped, MANIFEST_VERSION, MAX_ENTRIES, MAX_NAMES};
use crate::service::{Error, Result};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use warden_protocol::{Change, ChangesWalk, Client, ClientError, FileKind, Request, Response};
use warden_store::{BlobKey, ObjectKind, SnapshotId, StoreError, TenantStore};

/// Files read and stored at once.
const PARALLEL: usize = 4;

/// What one capture took.
pub struct Taken {
    pub manifest: Manifest,
    pub files: u64,
    pub bytes: u64,
}

/// Takes the files of the sandbox behind `client` changed since `since_ns`
/// into snapshot `id` (already begun in the store), at most `max_bytes`
/// of them. On failure the caller deletes the snapshot, which frees every
/// blob it came to hold. Boxed, as `restore` is.
pub fn capture<'a>(
    client: &'a Client,
    store: &'a TenantStore,
    id: &'a SnapshotId,
    scope: &'a Scope,
    since_ns: i64,
    max_bytes: u64,
) -> futures::future::BoxFuture<'a, Result<Taken>> {
    Box::pin(capture_all(client, store, id, scope, since_ns, max_bytes))
}

async fn capture_all(
    client: &Client,
    store: &TenantStore,
    id: &SnapshotId,
    scope: &Scope,
    since_ns: i64,
    max_bytes: u64,
) -> Result<Taken> {
    let changes = client
        .changes(ChangesWalk {
            roots: &scope.roots,
            skip: &scope.skip,
            since_ns,
            max_entries: MAX_ENTRIES,
            max_names: MAX_NAMES,
        })
        .await
        .map_err(walk_error)?;
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        entries: Vec::new(),
        skipped: Vec::new(),
        skipped_unlisted: 0,
    };
    let mut files = Vec::new();
    let mut listed = 0u64;
    for c in changes {
        match plan(c) {
            Ok(Planned::Entry(e)) => manifest.entries.push(e),
            Ok(Planned::File {
                path,
                mode,
                mtime_ns,
                size,
            }) => {
                listed = listed.saturating_add(size);
                files.push((manifest.entries.len(), path, mode, mtime_ns));
                // A placeholder, filled in once the content is stored.
                manifest.entries.push(Entry::Symlink {
                    path: String::new(),
                    mtime_ns,
                    target: String::new(),
                });
            }
            Err(s) => skip(&mut manifest, s),
        }
    }
    if listed > max_bytes {
        return Err(Error::TooLarge(format!(
            "the sandbox's changed files take {listed} bytes, more than a snapshot may \
             hold ([limits] max_snapshot_bytes = {max_bytes})"
        )));
    }
    let budget = AtomicU64::new(max_bytes);
    let stored: Vec<_> = futures::stream::iter(files)
        .map(|(at, path, mode, mtime_ns)| {
            let budget = &budget;
            let done = store_file(client, store, id, path, budget);
            async move {
                let (path, r) = done.await;
                (at, path, mode, mtime_ns, r)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut gone = Vec::new();
    for (at, path, mode, mtime_ns, r) in stored {
        match r? {
            Some((sha256, blob, size)) => {
                count += 1;
                bytes += size;
                manifest.entries[at] = Entry::File {
                    path,
                    mode,
                    mtime_ns,
                    size,
                    sha256,
                    blob: blob.to_string(),
                };
            }
            None => gone.push(at),
        }
    }
    // Files that vanished while the snapshot was taken are not in it.
    for at in gone.into_iter().rev() {
        let e = manifest.entries.remove(at);
        skip(
            &mut manifest,
            Skipped {
                path: e.path().to_string(),
                reason: "removed while the snapshot was taken".into(),
            },
        );
    }
    Ok(Taken {
        manifest,
        files: count,
        bytes,
    })
}

fn skip(m: &mut Manifest, s: Skipped) {
    if m.skipped.len() < super::MAX_SKIPPED_LISTED {
        m.skipped.push(s);
    } else {
        m.skipped_unlisted += 1;
    }
}

/// A tenant's quota as a quota (429), anything else as itself.
pub fn quota_error(e: StoreError) -> Error {
    match e {
        e @ (StoreError::StorageQuota { .. } | StoreError::CountQuota(_)) => {
            Error::Quota(e.to_string())
        }
        e => e.into(),
    }
}

fn walk_error(e: ClientError) -> Error {
    match e {
        ClientError::Remote(r) if r.kind == warden_protocol::ErrorKind::TooLarge => {
            Error::TooLarge(format!("the sandbox has {}", r.message))
        }
        other => Error::Sandbox(other),
    }
}

enum Planned {
    Entry(Entry),
    File {
        path: String,
        mode: u32,
        mtime_ns: i64,
        size: u64,
    },
}

fn plan(c: Change) -> std::result::Result<Planned, Skipped> {
    let shown = c.path.escape_ascii().to_string();
    let not_taken = |reason: &str| Skipped {
        path: shown.clone(),
        reason: reason.to_string(),
    };
    if let Some(reason) = &c.skipped {
        return Err(not_taken(reason));
    }
    let Ok(path) = String::from_utf8(c.path.clone()) else {
        return Err(not_taken("the path is not valid UTF-8"));
    };
    Ok(match c.kind {
        FileKind::Dir => Planned::Entry(Entry::Dir {
            path,
            mode: c.mode,
            mtime_ns: c.mtime_ns,
            // A name that is not UTF-8 is not taken; a restore leaves such
            // names alone.
            names: c
                .names
                .into_iter()
                .filter_map(|n| String::from_utf8(n).ok())
                .collect(),
        }),
        FileKind::File => Planned::File {
            path,
            mode: c.mode,
            mtime_ns: c.mtime_ns,
            size: c.size,
        },
        FileKind::Symlink => match String::from_utf8(c.target) {
            Ok(target) => Planned::Entry(Entry::Symlink {
                path,
                mtime_ns: c.mtime_ns,
                target,
            }),
            Err(_) => return Err(not_taken("the link's target is not valid UTF-8")),
        },
        _ => return Err(not_taken("not a regular file, directory or symlink")),
    })
}

/// Reads one file into a new object and makes the snapshot hold it; the
/// content's SHA-256, blob and size, or None if the file is gone.
async fn store_file(
    client: &Client,
    store: &TenantStore,
    id: &SnapshotId,
    path: String,
    budget: &AtomicU64,
) -> (String, Result<Option<(String, BlobKey, u64)>>) {
    let r = store_one(client, store, id, &path, budget).await;
    (path, r)
}

async fn store_one(
    client: &Client,
    store: &TenantStore,
    id: &SnapshotId,
    path: &str,
    budget: &AtomicU64,
) -> Result<Option<(String, BlobKey, u64)>> {
    let left = budget.load(Ordering::Relaxed);
    let mut s = client.stream(Request::ReadFile {
        path: path.to_string(),
        offset: 0,
        limit: Some(left.saturating_add(1)),
        strict: true,
        links_ok: true,
    })?;
    // The first answer says whether the file could be opened.
    let first = match s.next().await {
        Ok(Some(Response::Error(e))) if e.kind == warden_protocol::ErrorKind::NotFound => {
            return Ok(None)
        }
        Ok(Some(Response::Error(e))) => return Err(ClientError::Remote(e).into()),
        Ok(Some(r)) => r,
        Ok(None) => return Err(ClientError::Disconnected.into()),
        Err(ClientError::Remote(e)) if e.kind == warden_protocol::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let body = futures::stream::unfold((Some(first), s), |(pending, mut s)| async move {
        let next = match pending {
            Some(r) => Ok(Some(r)),
            None => s.next().await,
        };
        match next {
            Ok(Some(Response::Data(d))) => Some((Ok(Bytes::from(d)), (None, s))),
            Ok(Some(Response::Done)) | Ok(None) => None,
            Ok(Some(other)) => Some((Err(format!("unexpected answer {other:?}")), (None, s))),
            Err(e) => Some((Err(e.to_string()), (None, s))),
        }
    })
    .boxed();
    let key = BlobKey::generate();
    let objects = store.objects();
    let put = objects
        .put_stream(ObjectKind::Blobs, key.as_str(), body, left)
        .await;
    let put = match put {
        Ok(p) => p,
        Err(StoreError::TooLarge { .. }) => {
            return Err(Error::TooLarge(format!(
                "{path} grew past what the snapshot may still hold \
                 ([limits] max_snapshot_bytes)"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            b.checked_sub(put.size)
        })
        .is_err()
    {
        let _ = objects.delete(ObjectKind::Blobs, key.as_str()).await;
        return Err(Error::TooLarge(
            "the sandbox's files are more than a snapshot may hold ([limits] max_snapshot_bytes)"
                .into(),
        ));
    }
    let hold = match store.hold_blob(id, &put.sha256, &key, put.size).await {
        Ok(h) => h,
        Err(e) => {
            let _ = objects.delete(ObjectKind::Blobs, key.as_str()).await;
            return Err(quota_error(e));
        }
    };
    if !hold.adopted {
        // The content was stored already: ours is a duplicate.
        objects.delete(ObjectKind::Blobs, key.as_str()).await?;
    }
    Ok(Some((put.sha256, hold.key, put.size)))
}

//! Taking a snapshot's files from a live sandbox: the init's `Changes`
//! walk says what changed, each regular file is read (strictly: no symlink
//! anywhere on its path; through a pipe the init's kernel fills, or as
//! frames where the channel does not pass one) and stored as the tenant's
//! blob, found again by its SHA-256 so a content already stored is kept
//! once.

use super::base::Base;
use super::{Entry, Manifest, Scope, Skipped, MANIFEST_VERSION};
use crate::service::{Error, Result};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use warden_protocol::{Change, Client, ClientError, ErrorKind, FileKind, Request, Response};
use warden_store::{BlobKey, ObjectKind, SnapshotId, StoreError, TenantStore};

/// Files read and stored at once.
const PARALLEL: usize = 4;

/// What one capture took.
pub struct Taken {
    pub manifest: Manifest,
    pub files: u64,
    pub bytes: u64,
    /// Of `files`, those taken from the base (not read).
    pub reused: u64,
}

/// Takes the files of the sandbox behind `client` changed since `since_ns`
/// into snapshot `id` (already begun in the store), at most `max_bytes`
/// of them; a file its `base` says is untouched since its restore is
/// taken from the blob it was restored from, not read. On failure the
/// caller deletes the snapshot, which frees every blob it came to hold.
/// Boxed, as `restore` is.
pub fn capture<'a>(
    client: &'a Client,
    store: &'a TenantStore,
    id: &'a SnapshotId,
    (scope, since_ns, base): (&'a Scope, i64, Option<&'a Base>),
    max_bytes: u64,
) -> futures::future::BoxFuture<'a, Result<Taken>> {
    Box::pin(capture_all(
        client, store, id, scope, since_ns, base, max_bytes,
    ))
}

/// A regular file to take: where its entry goes in the manifest, and its
/// content's SHA-256 if the base has it untouched.
struct ToTake {
    at: usize,
    path: String,
    mode: u32,
    mtime_ns: i64,
    size: u64,
    known: Option<String>,
}

async fn capture_all(
    client: &Client,
    store: &TenantStore,
    id: &SnapshotId,
    scope: &Scope,
    since_ns: i64,
    base: Option<&Base>,
    max_bytes: u64,
) -> Result<Taken> {
    let changes = client
        .changes(scope.walk(since_ns))
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
        let known = base.and_then(|b| {
            let path = std::str::from_utf8(&c.path).ok()?;
            b.unchanged(path, &c)
        });
        match plan(c) {
            Ok(Planned::Entry(e)) => manifest.entries.push(e),
            Ok(Planned::File {
                path,
                mode,
                mtime_ns,
                size,
            }) => {
                listed = listed.saturating_add(size);
                files.push(ToTake {
                    at: manifest.entries.len(),
                    path,
                    mode,
                    mtime_ns,
                    size,
                    known,
                });
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
        .map(|f| {
            let budget = &budget;
            let ToTake {
                at,
                path,
                mode,
                mtime_ns,
                size,
                known,
            } = f;
            let done = store_file(client, store, id, path, (size, known), budget);
            async move {
                let (path, r) = done.await;
                (at, path, mode, mtime_ns, r)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let (mut count, mut bytes, mut reused) = (0u64, 0u64, 0u64);
    let mut gone = Vec::new();
    for (at, path, mode, mtime_ns, r) in stored {
        match r? {
            Some((sha256, blob, size, from_base)) => {
                count += 1;
                reused += u64::from(from_base);
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
    crate::metrics::snapshot_files(count - reused, reused);
    Ok(Taken {
        manifest,
        files: count,
        bytes,
        reused,
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

/// Makes the snapshot hold one file's content, the `known` blob of its
/// `size` bytes if there is one (its base's), else read into a new object;
/// the content's SHA-256, blob and size and whether it was the known one,
/// or None if the file is gone.
async fn store_file(
    client: &Client,
    store: &TenantStore,
    id: &SnapshotId,
    path: String,
    (size, known): (u64, Option<String>),
    budget: &AtomicU64,
) -> (String, Result<Option<(String, BlobKey, u64, bool)>>) {
    if let Some(sha256) = known {
        match hold_known(store, id, &sha256, size, budget).await {
            Ok(Some(key)) => return (path, Ok(Some((sha256, key, size, true)))),
            // Not stored after all: read as any other file.
            Ok(None) => {}
            Err(e) => return (path, Err(e)),
        }
    }
    let r = store_one(client, store, id, &path, budget).await;
    (
        path,
        r.map(|o| o.map(|(sha256, key, size)| (sha256, key, size, false))),
    )
}

/// Makes the snapshot hold the stored blob of `sha256` (`size` bytes,
/// within the snapshot's budget); its key, or None if none is stored.
async fn hold_known(
    store: &TenantStore,
    id: &SnapshotId,
    sha256: &str,
    size: u64,
    budget: &AtomicU64,
) -> Result<Option<BlobKey>> {
    if budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            b.checked_sub(size)
        })
        .is_err()
    {
        return Err(Error::TooLarge(
            "the sandbox's files are more than a snapshot may hold ([limits] max_snapshot_bytes)"
                .into(),
        ));
    }
    let held = store.hold_known_blob(id, sha256).await?;
    if held.is_none() {
        budget.fetch_add(size, Ordering::Relaxed);
    }
    Ok(held)
}

async fn store_one(
    client: &Client,
    store: &TenantStore,
    id: &SnapshotId,
    path: &str,
    budget: &AtomicU64,
) -> Result<Option<(String, BlobKey, u64)>> {
    let left = budget.load(Ordering::Relaxed);
    // One byte past what may be stored: a file that has it is too large.
    let limit = left.saturating_add(1);
    let mut opened = Opened::NotPassed;
    if client.passes_files() {
        opened = piped(client, path, limit).await?;
        if let Opened::NotPassed = opened {
            tracing::warn!("a sandbox's init did not get a pipe to read into; sending frames");
            client.stop_passing_files();
        }
    }
    if let Opened::NotPassed = opened {
        opened = framed(client, path, limit).await?;
    }
    let body = match opened {
        Opened::Body(b) => b,
        Opened::Gone | Opened::NotPassed => return Ok(None),
    };
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

/// A file of the sandbox opened for reading: its bytes, or why not.
enum Opened {
    Body(futures::stream::BoxStream<'static, std::result::Result<Bytes, String>>),
    /// It is gone (removed since the walk).
    Gone,
    /// The channel did not pass the pipe: read it as frames.
    NotPassed,
}

/// `path` read through a pipe the init's kernel fills (`ReadToFile`).
async fn piped(client: &Client, path: &str, limit: u64) -> Result<Opened> {
    let mut read = client.read_piped(path, limit, true, true)?;
    // The first piece, or the error, says whether the file could be read.
    let first = match read.next().await {
        Ok(first) => first,
        Err(ClientError::Remote(e)) => {
            return match e.kind {
                ErrorKind::NotFound => Ok(Opened::Gone),
                ErrorKind::Unsupported if e.message == warden_protocol::NO_PIPE => {
                    Ok(Opened::NotPassed)
                }
                _ => Err(ClientError::Remote(e).into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    // The rest, up to the end or the first failure.
    let rest = futures::stream::unfold(Some(read), |read| async move {
        let mut read = read?;
        match read.next().await {
            Ok(Some(p)) => Some((Ok(Bytes::from(p)), Some(read))),
            Ok(None) => None,
            Err(e) => Some((Err(e.to_string()), None)),
        }
    });
    Ok(Opened::Body(match first {
        Some(p) => futures::stream::iter([Ok(Bytes::from(p))])
            .chain(rest)
            .boxed(),
        None => futures::stream::empty().boxed(),
    }))
}

/// `path` read as `Data` frames over the control channel (`ReadFile`).
async fn framed(client: &Client, path: &str, limit: u64) -> Result<Opened> {
    let mut s = client.stream(Request::ReadFile {
        path: path.to_string(),
        offset: 0,
        limit: Some(limit),
        strict: true,
        links_ok: true,
    })?;
    // The first answer says whether the file could be opened.
    let first = match s.next().await {
        Ok(Some(Response::Error(e))) | Err(ClientError::Remote(e))
            if e.kind == ErrorKind::NotFound =>
        {
            return Ok(Opened::Gone)
        }
        Ok(Some(Response::Error(e))) => return Err(ClientError::Remote(e).into()),
        Ok(Some(r)) => r,
        Ok(None) => return Err(ClientError::Disconnected.into()),
        Err(e) => return Err(e.into()),
    };
    // The rest, up to `Done` or the first failure.
    let rest = futures::stream::unfold(Some(s), |s| async move {
        let mut s = s?;
        match s.next().await {
            Ok(Some(r)) => piece(r).map(|p| (p, Some(s))),
            Ok(None) => None,
            Err(e) => Some((Err(e.to_string()), None)),
        }
    });
    Ok(Opened::Body(match piece(first) {
        Some(p) => futures::stream::iter([p]).chain(rest).boxed(),
        None => futures::stream::empty().boxed(),
    }))
}

/// What one answer to a `ReadFile` adds to the body: bytes, its end
/// (`None`), or a failure.
fn piece(r: Response) -> Option<std::result::Result<Bytes, String>> {
    match r {
        Response::Data(d) => Some(Ok(Bytes::from(d))),
        Response::Done => None,
        other => Some(Err(format!("unexpected answer {other:?}"))),
    }
}

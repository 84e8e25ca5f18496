//! Putting a snapshot's files into a new sandbox, before anyone else can
//! reach it: first what the source had deleted (names a changed directory
//! holds here but did not hold there), then directories, then files and
//! links, then the directories' modes and times (last, so a read-only
//! directory is filled before it becomes read-only).
//!
//! Everything is written by the init as the sandbox's user, so a restore
//! can do nothing the sandbox could not do itself; its bytes count in the
//! new sandbox's disk limit like any other.

use super::restore_one::{failed, make_dir, put, remote_kind};
use super::{join, Entry, Manifest, Scope};
use crate::service::{Error, Result};
use bytes::Bytes;
use futures::StreamExt;
use futures::TryStreamExt;
use std::collections::HashSet;
use warden_protocol::{
    BatchAnswer, BatchOp, Client, ClientError, ErrorKind, FileKind, Response, BATCH_BYTES,
};
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
    // Each step goes to the init as one batch of operations (a round trip
    // per step, not per path and step: on gVisor each trip is a
    // millisecond or more); what a batch cannot settle (a directory of
    // the image's where a file goes, a link already there) takes the
    // one-path-at-a-time way after it.
    let dirs: Vec<&'a Entry> = entries
        .iter()
        .copied()
        .filter(|e| matches!(e, Entry::Dir { .. }))
        .collect();
    remove_deleted(client, scope, &dirs).await?;
    let levels = by_depth(&dirs);
    make_dirs(client, &levels).await?;
    let (small, other): (Vec<&'a Entry>, Vec<&'a Entry>) = entries
        .iter()
        .copied()
        .filter(|e| !matches!(e, Entry::Dir { .. }))
        .partition(|e| matches!(e, Entry::File { size, .. } if *size <= INLINE_BYTES));
    let jobs = other
        .iter()
        .map(|e| Box::pin(put(client, store, e)) as Job<'a>)
        .collect();
    let (small, other) = futures::join!(put_small(client, store, &small), all(jobs));
    small?;
    other?;
    // Deepest first, so a directory that becomes read-only (or closed to
    // its user) has had everything under it set.
    let ops = levels
        .iter()
        .rev()
        .flatten()
        .filter_map(|e| match e {
            Entry::Dir {
                path,
                mode,
                mtime_ns,
                ..
            } => Some(BatchOp::SetMeta {
                path: path.clone(),
                mode: Some(*mode),
                mtime_ns: Some(*mtime_ns),
            }),
            _ => None,
        })
        .collect();
    for (op, answer) in batch(client, ops).await? {
        match answer {
            // A directory of the image's (another owner's) keeps its own.
            Err(e) if remote_kind(&e) == Some(ErrorKind::PermissionDenied) => {}
            other => settled(&op, other)?,
        }
    }
    Ok(())
}

/// Files of at most this size go to the init inside a batch; larger ones
/// are handed over as files (or streamed) one by one.
const INLINE_BYTES: u64 = 64 * 1024;

/// Runs `ops` as batches; each operation with its answer.
async fn batch(client: &Client, ops: Vec<BatchOp>) -> Result<Vec<(BatchOp, BatchAnswer)>> {
    let answers = client.batch(ops.clone()).await?;
    Ok(ops.into_iter().zip(answers).collect())
}

/// An answer that should be `Done`, as the restore's result.
fn settled(op: &BatchOp, answer: BatchAnswer) -> Result<()> {
    match answer {
        Ok(Response::Done) => Ok(()),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(failed(op.path(), e)),
    }
}

fn unexpected(answer: &Response) -> Error {
    Error::Sandbox(ClientError::Unexpected(format!("{answer:?}")))
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

/// Removes what each directory holds here that the source's did not.
async fn remove_deleted(client: &Client, scope: &Scope, dirs: &[&Entry]) -> Result<()> {
    let ops = dirs
        .iter()
        .map(|d| BatchOp::ListDir {
            path: d.path().to_string(),
        })
        .collect();
    let mut gone = Vec::new();
    for (d, (op, answer)) in dirs.iter().zip(batch(client, ops).await?) {
        let Entry::Dir { names, .. } = d else {
            continue;
        };
        let dir = op.path();
        let here = match answer {
            Ok(Response::Entries(l)) => l,
            Err(e)
                if matches!(
                    remote_kind(&e),
                    Some(ErrorKind::NotFound | ErrorKind::NotADirectory)
                ) =>
            {
                continue
            }
            Err(e) => return Err(failed(dir, e)),
            Ok(other) => return Err(unexpected(&other)),
        };
        let kept: HashSet<&str> = names.iter().map(String::as_str).collect();
        for entry in here {
            let Ok(name) = std::str::from_utf8(&entry.name) else {
                continue;
            };
            let path = join(dir, name);
            if !kept.contains(name) && !scope.skips(&path) {
                gone.push(BatchOp::Remove {
                    path,
                    recursive: true,
                });
            }
        }
    }
    for (op, answer) in batch(client, gone).await? {
        match answer {
            Err(e) if remote_kind(&e) == Some(ErrorKind::NotFound) => {}
            other => settled(&op, other)?,
        }
    }
    Ok(())
}

/// Makes every directory, shallowest first. Where one is in the way of
/// something else (or a parent could not be made), the directories are
/// made one at a time, each as [`make_dir`] does.
async fn make_dirs(client: &Client, levels: &[Vec<&Entry>]) -> Result<()> {
    let ops: Vec<BatchOp> = levels
        .iter()
        .flatten()
        .map(|e| BatchOp::Mkdir {
            path: e.path().to_string(),
            parents: false,
        })
        .collect();
    let mut there = Vec::new();
    let mut one_by_one = false;
    for (op, answer) in batch(client, ops).await? {
        match answer {
            Ok(_) => {}
            Err(e) if remote_kind(&e) == Some(ErrorKind::AlreadyExists) => {
                there.push(BatchOp::Stat {
                    path: op.path().to_string(),
                })
            }
            Err(_) => one_by_one = true,
        }
    }
    for (_, answer) in batch(client, there).await? {
        if !matches!(answer, Ok(Response::Stat(ref st)) if st.kind == FileKind::Dir) {
            one_by_one = true;
        }
    }
    if one_by_one {
        for level in levels {
            for e in level {
                make_dir(client, e.path()).await?;
            }
        }
    }
    Ok(())
}

/// A small file's content, read whole.
async fn content(store: &TenantStore, e: &Entry) -> Result<Bytes> {
    match e {
        Entry::File { blob, .. } => Ok(store.objects().get_bytes(ObjectKind::Blobs, blob).await?),
        _ => Ok(Bytes::new()),
    }
}

/// Writes the small files, a batch of at most [`BATCH_BYTES`] of them at
/// a time (so a restore holds no more of them in memory); one the batch
/// could not write (a directory or an unwritable file of the image's in
/// the way) is written as a large one is.
async fn put_small(client: &Client, store: &TenantStore, files: &[&Entry]) -> Result<()> {
    let mut rest = files;
    let mut by_path = Vec::new();
    while !rest.is_empty() {
        let mut bytes = 0;
        let n = rest
            .iter()
            .take_while(|e| {
                let size = match e {
                    Entry::File { size, path, .. } => *size as usize + path.len(),
                    _ => 0,
                };
                bytes += size;
                bytes <= BATCH_BYTES
            })
            .count()
            .max(1);
        let (part, left) = rest.split_at(n);
        rest = left;
        let reads: Vec<futures::future::BoxFuture<'_, Result<Bytes>>> = part
            .iter()
            .map(|e| Box::pin(content(store, e)) as _)
            .collect();
        let contents: Vec<Bytes> = futures::stream::iter(reads)
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        let ops = part
            .iter()
            .zip(contents)
            .filter_map(|(e, data)| match e {
                Entry::File {
                    path,
                    mode,
                    mtime_ns,
                    ..
                } => Some(BatchOp::PutFile {
                    path: path.clone(),
                    mode: *mode,
                    mtime_ns: *mtime_ns,
                    data: data.to_vec(),
                }),
                _ => None,
            })
            .collect();
        for ((op, answer), e) in batch(client, ops).await?.into_iter().zip(part) {
            match answer {
                Err(err)
                    if matches!(
                        remote_kind(&err),
                        Some(ErrorKind::IsADirectory | ErrorKind::PermissionDenied)
                    ) =>
                {
                    by_path.push(*e)
                }
                other => settled(&op, other)?,
            }
        }
    }
    for e in by_path {
        put(client, store, e).await?;
    }
    Ok(())
}

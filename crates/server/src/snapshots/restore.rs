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
    // Each step goes to the init as a batch of operations (a round trip
    // per step, not per path and step: on gVisor each trip is a
    // millisecond or more), and a small snapshot is two: what is at each
    // directory, then everything else. What a batch cannot settle (a
    // directory of the image's where a file goes, a link already there)
    // takes the one-path-at-a-time way after it.
    let dirs: Vec<&'a Entry> = entries
        .iter()
        .copied()
        .filter(|e| matches!(e, Entry::Dir { .. }))
        .collect();
    let levels = by_depth(&dirs);
    let mut first = match survey(client, scope, &dirs).await? {
        Survey::Clear(missing) => levels
            .iter()
            .flatten()
            .filter(|d| missing.contains(d.path()))
            .map(|d| BatchOp::Mkdir {
                path: d.path().to_string(),
                parents: false,
            })
            .collect(),
        Survey::Blocked => {
            for e in levels.iter().flatten() {
                make_dir(client, e.path()).await?;
            }
            Vec::new()
        }
    };
    let (small, other): (Vec<&'a Entry>, Vec<&'a Entry>) = entries
        .iter()
        .copied()
        .filter(|e| !matches!(e, Entry::Dir { .. }))
        .partition(|e| matches!(e, Entry::File { size, .. } if *size <= INLINE_BYTES));
    // Deepest first, so a directory that becomes read-only (or closed to
    // its user) has had everything under it set. In the files' last batch
    // unless a file may still come after it (a large one, a link, one the
    // batch could not write) or a directory closes to its user.
    let metas = meta_ops(&levels);
    let metas_last = other.is_empty()
        && dirs
            .iter()
            .all(|d| matches!(d, Entry::Dir { mode, .. } if mode & 0o300 == 0o300));
    if !other.is_empty() {
        judge_all(client.batch(std::mem::take(&mut first)).await?)?;
    }
    let last = if metas_last {
        metas.clone()
    } else {
        Vec::new()
    };
    let jobs = other
        .iter()
        .map(|e| Box::pin(put(client, store, e)) as Job<'a>)
        .collect();
    let (left, other) = futures::join!(put_small(client, store, &small, (first, last)), all(jobs));
    let left = left?;
    other?;
    for e in &left {
        put(client, store, e).await?;
    }
    if !metas_last || !left.is_empty() {
        judge_all(client.batch(metas).await?)?;
    }
    Ok(())
}

/// Each directory's mode and time, deepest first.
fn meta_ops(levels: &[Vec<&Entry>]) -> Vec<BatchOp> {
    levels
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
        .collect()
}

/// What a restore makes of one operation's answer.
enum Judged {
    Done,
    /// A file the batch could not write: written one path at a time.
    ByPath,
}

/// Whether `answer` settles `op` (as the restore makes, dates and writes).
fn judge(op: &BatchOp, answer: BatchAnswer) -> Result<Judged> {
    let kind = answer.as_ref().err().and_then(remote_kind);
    match (op, kind) {
        // Made meanwhile: the survey said nothing else was there.
        (BatchOp::Mkdir { .. }, Some(ErrorKind::AlreadyExists)) => Ok(Judged::Done),
        // A directory of the image's (another owner's) keeps its own.
        (BatchOp::SetMeta { .. }, Some(ErrorKind::PermissionDenied)) => Ok(Judged::Done),
        // Removed meanwhile.
        (BatchOp::Remove { .. }, Some(ErrorKind::NotFound)) => Ok(Judged::Done),
        (BatchOp::PutFile { .. }, Some(ErrorKind::IsADirectory | ErrorKind::PermissionDenied)) => {
            Ok(Judged::ByPath)
        }
        _ => settled(op, answer).map(|()| Judged::Done),
    }
}

/// Every answer settles its operation (none may need a path of its own).
fn judge_all(answers: Vec<(BatchOp, BatchAnswer)>) -> Result<()> {
    for (op, answer) in answers {
        if let Judged::ByPath = judge(&op, answer)? {
            return Err(failed(
                op.path(),
                ClientError::Unexpected("not written".into()),
            ));
        }
    }
    Ok(())
}

/// Files of at most this size go to the init inside a batch; larger ones
/// are handed over as files (or streamed) one by one.
const INLINE_BYTES: u64 = 64 * 1024;

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

/// What is at the snapshot's directories in the new sandbox.
enum Survey {
    /// Each is a directory or is missing (these paths): made in a batch.
    Clear(HashSet<String>),
    /// Something else is in the way of one: made one at a time.
    Blocked,
}

/// Looks at every directory's path (`lstat`) and into it, in one batch,
/// and removes what each holds here that the source's did not.
async fn survey(client: &Client, scope: &Scope, dirs: &[&Entry]) -> Result<Survey> {
    let ops = dirs
        .iter()
        .flat_map(|d| {
            let path = d.path().to_string();
            [
                BatchOp::Stat { path: path.clone() },
                BatchOp::ListDir { path },
            ]
        })
        .collect();
    let mut answers = client.batch(ops).await?.into_iter();
    let mut missing = HashSet::new();
    let mut blocked = false;
    let mut gone = Vec::new();
    for d in dirs {
        let (Some((stat, at)), Some((_, listed))) = (answers.next(), answers.next()) else {
            return Err(unexpected(&Response::Done));
        };
        let Entry::Dir { names, .. } = d else {
            continue;
        };
        let dir = stat.path();
        match at {
            Ok(Response::Stat(st)) if st.kind == FileKind::Dir => {}
            Ok(Response::Stat(_)) => blocked = true,
            Err(e) if remote_kind(&e) == Some(ErrorKind::NotFound) => {
                missing.insert(dir.to_string());
                continue;
            }
            Err(e) if remote_kind(&e) == Some(ErrorKind::NotADirectory) => {
                blocked = true;
                continue;
            }
            Err(e) => return Err(failed(dir, e)),
            Ok(other) => return Err(unexpected(&other)),
        }
        let here = match listed {
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
    judge_all(client.batch(gone).await?)?;
    Ok(if blocked {
        Survey::Blocked
    } else {
        Survey::Clear(missing)
    })
}

/// A small file's content, read whole.
async fn content(store: &TenantStore, e: &Entry) -> Result<Bytes> {
    match e {
        Entry::File { blob, .. } => Ok(store.objects().get_bytes(ObjectKind::Blobs, blob).await?),
        _ => Ok(Bytes::new()),
    }
}

/// Writes the small files, a batch of at most [`BATCH_BYTES`] of them at
/// a time (so a restore holds no more of them in memory), `first` going
/// before them in the first batch and `last` after them in the last. The
/// files a batch could not write (a directory or an unwritable file of
/// the image's in the way) are left to the caller.
async fn put_small<'e>(
    client: &Client,
    store: &TenantStore,
    files: &[&'e Entry],
    (first, last): (Vec<BatchOp>, Vec<BatchOp>),
) -> Result<Vec<&'e Entry>> {
    let mut rest = files;
    let (mut first, mut last) = (Some(first), Some(last));
    let mut by_path = Vec::new();
    while first.is_some() || !rest.is_empty() {
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
            .max(1)
            .min(rest.len());
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
        let mut ops = first.take().unwrap_or_default();
        // The entry each operation writes, for those that write one.
        let mut of = vec![None; ops.len()];
        for (e, data) in part.iter().zip(contents) {
            if let Entry::File {
                path,
                mode,
                mtime_ns,
                ..
            } = e
            {
                ops.push(BatchOp::PutFile {
                    path: path.clone(),
                    mode: *mode,
                    mtime_ns: *mtime_ns,
                    data,
                });
                of.push(Some(*e));
            }
        }
        if rest.is_empty() {
            let last = last.take().unwrap_or_default();
            of.resize(ops.len() + last.len(), None);
            ops.extend(last);
        }
        for ((op, answer), e) in client.batch(ops).await?.into_iter().zip(of) {
            if let (Judged::ByPath, Some(e)) = (judge(&op, answer)?, e) {
                by_path.push(e);
            }
        }
    }
    Ok(by_path)
}

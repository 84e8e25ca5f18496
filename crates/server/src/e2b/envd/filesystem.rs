//! `filesystem.Filesystem` (all but watching, in `watch.rs`): every
//! operation goes through the init, so paths resolve in the sandbox's own
//! view and a symlink planted there cannot lead outside it.

use super::audit;
use super::entry::entry;
use super::errors::from_client;
use super::paths::{self, absolute};
use crate::manager::Live;
use crate::service::audit::Action;
use crate::state::Shared;
use warden_envd_wire::connect::{Code, Error};
use warden_envd_wire::filesystem::{
    EntryInfo, ListDirRequest, ListDirResponse, MakeDirResponse, MoveRequest, MoveResponse,
    RemoveResponse, StatResponse,
};
use warden_protocol::FileKind;

/// Most entries one ListDir returns (a deep listing of a big tree).
const MAX_ENTRIES: usize = 100_000;
/// Most bytes of entries (encoded; their paths and metadata) one ListDir
/// gathers: the server's memory per listing, whatever the tree holds.
const MAX_LISTING_BYTES: usize = 64 << 20;

pub async fn stat(live: &Live, path: &str) -> Result<StatResponse, Error> {
    let path = absolute(path)?;
    let st = live.client.stat(&path).await.map_err(from_client)?;
    Ok(StatResponse {
        entry: Some(entry(&path, &st)),
    })
}

pub async fn make_dir(st: &Shared, live: &Live, path: &str) -> Result<MakeDirResponse, Error> {
    let path = absolute(path)?;
    let made = make_dir_at(live, &path).await;
    // An existing directory is E2B's normal "false", not a change.
    if !matches!(&made, Err(e) if e.code == Code::AlreadyExists) {
        audit::record(st, live, Action::SandboxMkdir, &path, "", &made).await?;
    }
    made
}

async fn make_dir_at(live: &Live, path: &str) -> Result<MakeDirResponse, Error> {
    let path = path.to_string();
    // E2B answers "already exists" for an existing directory (the SDKs'
    // make_dir then returns false) and creates missing parents.
    match live.client.stat(&path).await {
        Ok(_) => {
            return Err(Error::already_exists(format!("{path} already exists")));
        }
        Err(e) if e.remote_kind() == Some(warden_protocol::ErrorKind::NotFound) => {}
        Err(e) => return Err(from_client(e)),
    }
    live.client.mkdir(&path, true).await.map_err(from_client)?;
    let st = live.client.stat(&path).await.map_err(from_client)?;
    Ok(MakeDirResponse {
        entry: Some(entry(&path, &st)),
    })
}

pub async fn rename(st: &Shared, live: &Live, req: MoveRequest) -> Result<MoveResponse, Error> {
    let from = absolute(&req.source)?;
    let to = absolute(&req.destination)?;
    let moved = async {
        ensure_parent(live, &to).await?;
        live.client.rename(&from, &to).await.map_err(from_client)?;
        let st = live.client.stat(&to).await.map_err(from_client)?;
        Ok(MoveResponse {
            entry: Some(entry(&to, &st)),
        })
    }
    .await;
    let target = format!("{from} -> {to}");
    audit::record(st, live, Action::SandboxFileMove, &target, "", &moved).await?;
    moved
}

pub async fn remove(st: &Shared, live: &Live, path: &str) -> Result<RemoveResponse, Error> {
    let path = absolute(path)?;
    if path == "/" {
        return Err(Error::invalid_argument("refusing to remove /"));
    }
    // As E2B's envd: removing what is not there is done, not an error.
    let removed = match live.client.remove(&path, true).await {
        Err(e) if e.remote_kind() == Some(warden_protocol::ErrorKind::NotFound) => Ok(()),
        other => other.map_err(from_client),
    };
    audit::record(st, live, Action::SandboxFileRemove, &path, "", &removed).await?;
    removed.map(|()| RemoveResponse {})
}

/// Lists `depth` levels (0 counts as 1), depth first; symlinked
/// directories are listed as links, never descended into.
pub async fn list_dir(live: &Live, req: ListDirRequest) -> Result<ListDirResponse, Error> {
    let root = absolute(&req.path)?;
    let depth = req.depth.max(1);
    let st = live.client.stat(&root).await.map_err(from_client)?;
    if st.kind != FileKind::Dir {
        return Err(Error::invalid_argument(format!(
            "{root} is not a directory"
        )));
    }
    let mut entries: Vec<EntryInfo> = Vec::new();
    let mut bytes = 0usize;
    let mut level = vec![root];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in level {
            let listed = match live.client.list_dir(&dir).await {
                Ok(l) => l,
                // A directory that vanished or cannot be read below the
                // first level is skipped, as a walk would.
                Err(e) if !entries.is_empty() && e.remote_kind().is_some() => continue,
                Err(e) => return Err(from_client(e)),
            };
            for d in listed {
                let name = String::from_utf8_lossy(&d.name).into_owned();
                let path = paths::join(&dir, &name);
                if d.stat.kind == FileKind::Dir {
                    next.push(path.clone());
                }
                let e = entry(&path, &d.stat);
                bytes += warden_envd_wire::prost::Message::encoded_len(&e);
                entries.push(e);
                if entries.len() > MAX_ENTRIES || bytes > MAX_LISTING_BYTES {
                    return Err(Error::new(
                        Code::ResourceExhausted,
                        format!(
                            "more than {MAX_ENTRIES} entries or {} MiB; list with a smaller depth",
                            MAX_LISTING_BYTES >> 20
                        ),
                    ));
                }
            }
        }
        level = next;
    }
    // In the order of envd's walk (Go's `filepath.WalkDir`): each
    // directory's entries by name, each followed by what is under it.
    entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    Ok(ListDirResponse { entries })
}

/// Creates the parent directories of `path` (E2B's writes and moves do).
pub async fn ensure_parent(live: &Live, path: &str) -> Result<(), Error> {
    let parent = paths::parent(path);
    if parent == "/" {
        return Ok(());
    }
    match live.client.mkdir(parent, true).await {
        Ok(()) => Ok(()),
        Err(e) if e.remote_kind() == Some(warden_protocol::ErrorKind::AlreadyExists) => Ok(()),
        Err(e) => Err(from_client(e)),
    }
}

//! Pauses that keep a sandbox's processes and memory (E2B's `mode="full"`),
//! on the gVisor tier: `runsc checkpoint` saves the whole sandbox (its
//! processes, their memory, and its files, which live in the Sentry's
//! memory) into a checkpoint directory on this node; a resume `runsc
//! restore`s it under the same id, and the init, frozen before the
//! checkpoint, goes on over a new control channel.
//!
//! The native tier refuses: CRIU cannot put a Landlock domain back, so a
//! restored native sandbox would run with less confinement than it was
//! started with.
//!
//! The record of such a pause is a pause snapshot holding no files, whose
//! spec says `memory`; its checkpoint is
//! `<data>/checkpoints/<tenant>/<sandbox>/<snapshot>` (root's alone: it
//! holds the sandbox's memory, secrets included).
//! Both go together: a checkpoint without a ready snapshot (a crash
//! mid-pause) is deleted at start-up, and a snapshot without its
//! checkpoint cannot be resumed (it says so) but can be deleted.

use crate::api::StoredSpec;
use crate::manager::Live;
use crate::service::{Error, Result};
use crate::state::{AppState, Shared};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use warden_store::{
    now_ms, MetaStore, SandboxId, SandboxState, SnapshotId, SnapshotPurpose, SnapshotRecord,
    TenantId, TenantStore,
};

/// The key in a pause snapshot's spec that marks a memory-keeping pause.
pub const MARK: &str = "memory";

/// How long the init may take to write what it has queued and stop.
const FREEZE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Room kept free on the node's disk beyond the checkpoint itself.
const DISK_SLACK: u64 = 256 << 20;

fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoints")
}

/// Where the checkpoints of `tenant`'s memory pauses live.
pub fn tenant_dir(st: &AppState, tenant: &TenantId) -> PathBuf {
    root(&st.cfg.data_dir).join(tenant.as_str())
}

/// Where the checkpoint of pause snapshot `snap` lives.
pub fn dir(st: &AppState, snap: &SnapshotRecord) -> PathBuf {
    dir_in(&st.cfg.data_dir, snap)
}

fn dir_in(data_dir: &Path, snap: &SnapshotRecord) -> PathBuf {
    root(data_dir)
        .join(snap.tenant_id.as_str())
        .join(snap.source_sandbox.as_str())
        .join(snap.id.as_str())
}

/// Whether pause snapshot `snap` kept its sandbox's memory.
pub fn is_memory(snap: &SnapshotRecord) -> bool {
    snap.spec.get(MARK).and_then(|v| v.as_bool()) == Some(true)
}

/// The key in a memory pause's spec naming the protocol its (frozen) init
/// speaks: a restored init is the one that was checkpointed, so a server
/// speaking another version cannot talk to it.
const PROTOCOL: &str = "protocol";
/// The version memory pauses came with, for records that do not say.
const FIRST_PROTOCOL: u16 = 6;

/// Why the memory pause `snap` cannot be resumed by this server, if so.
pub fn unresumable(snap: &SnapshotRecord) -> Option<String> {
    let theirs = snap
        .spec
        .get(PROTOCOL)
        .and_then(|v| v.as_u64())
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(FIRST_PROTOCOL);
    (theirs != warden_protocol::VERSION).then(|| {
        format!(
            "the sandbox was paused with its memory by a Warden whose sandbox init speaks \
             protocol {theirs}; this one speaks {}: its memory cannot be resumed here (resume \
             it with the Warden that paused it, or delete it)",
            warden_protocol::VERSION
        )
    })
}

/// Why a sandbox made as `spec` cannot be paused with its memory, if so.
pub fn refusal(spec: &StoredSpec) -> Option<&'static str> {
    if spec.isolation == warden_spec::Isolation::Native {
        return Some(
            "mode \"full\" (processes and memory kept) needs the gvisor tier: a native \
             sandbox restored by CRIU would come back without its Landlock confinement, so \
             Warden does not checkpoint one. Pause with mode \"filesystem\" (its files are \
             kept) or create the sandbox with isolation \"gvisor\"",
        );
    }
    if spec.network.mode != "none" {
        return Some(
            "mode \"full\" (processes and memory kept) needs a sandbox without an egress \
             allowlist: its connections go through the host's network stack, which gVisor \
             cannot checkpoint. Pause with mode \"filesystem\" (its files are kept)",
        );
    }
    None
}

/// What a memory pause came to.
pub enum Paused {
    /// Taken and recorded: the sandbox is to be torn down as paused.
    Recorded(SnapshotRecord),
    /// Taken (the sandbox's processes have ended and all it was is in its
    /// checkpoint) but the store did not take the record: the sandbox is
    /// to be torn down as paused all the same, and [`settle_later`]
    /// records it once the store answers (at the latest, [`recover`] at
    /// the next start). The store's error.
    Unrecorded(SnapshotRecord, Error),
}

/// Saves `live` whole into a new pause snapshot with `spec` (which says
/// what a resume needs besides the checkpoint), charged to the tenant's
/// storage at the sandbox's memory limit until its size is known. On
/// failure before the checkpoint is complete nothing is kept and the
/// sandbox goes on running, thawed; after it, the checkpoint is never
/// deleted for a failure to record it.
pub async fn pause(
    st: &Shared,
    store: &TenantStore,
    live: &Live,
    mut spec: serde_json::Value,
) -> Result<Paused> {
    if let Some(obj) = spec.as_object_mut() {
        obj.insert(MARK.into(), serde_json::Value::Bool(true));
        obj.insert(PROTOCOL.into(), warden_protocol::VERSION.into());
    }
    let mut snap = SnapshotRecord {
        id: SnapshotId::generate(),
        tenant_id: store.tenant_id().clone(),
        name: None,
        source_sandbox: live.id.clone(),
        ready: false,
        purpose: SnapshotPurpose::Pause,
        spec,
        files: 0,
        bytes: 0,
        manifest_bytes: 0,
        // A checkpoint is about as large as what the sandbox holds in
        // memory: at most its limit.
        held_bytes: live.memory_limit(),
        created_at: now_ms(),
    };
    let image = dir(st, &snap);
    let partial = partial(&image);
    check_room(&image, live.memory_limit())?;
    store
        .begin_snapshot(&snap)
        .await
        .map_err(crate::snapshots::capture::quota_error)?;
    let taken = async {
        make_private_dir(&partial)?;
        // An init that cannot finish what it writes within the bound is
        // not checkpointed (thawed, in case it froze after all).
        match tokio::time::timeout(FREEZE_DEADLINE, live.client.freeze()).await {
            Ok(frozen) => frozen?,
            Err(_) => {
                let _ = tokio::time::timeout(FREEZE_DEADLINE, live.client.thaw()).await;
                return Err(Error::conflict(
                    "the sandbox's init did not settle for the pause; it goes on running",
                ));
            }
        }
        if let Err(e) = st.sandboxes.checkpoint(live, partial.clone()).await {
            // It goes on: its init writes again, to the same host.
            if let Err(t) = live.client.thaw().await {
                tracing::error!(sandbox = %live.id, "thawing after a failed checkpoint: {t}");
            }
            return Err(e);
        }
        publish(&partial, &image)
    }
    .await;
    if let Err(e) = taken {
        if let Err(r) = remove(st, store, &snap).await {
            tracing::error!(snapshot = %snap.id, "dropping a failed memory pause: {r}");
        }
        return Err(e);
    }
    snap.bytes = size_of(&image);
    snap.held_bytes = snap.bytes;
    match record(store, &snap).await {
        Ok(true) => {
            snap.ready = true;
            Ok(Paused::Recorded(snap))
        }
        Ok(false) => {
            // Deleted while it was taken (its sandbox or tenant deleted).
            if let Err(r) = remove(st, store, &snap).await {
                tracing::error!(snapshot = %snap.id, "dropping a cancelled memory pause: {r}");
            }
            Err(Error::conflict(
                "the pause was cancelled while it was taken",
            ))
        }
        Err(e) => Ok(Paused::Unrecorded(snap, e)),
    }
}

/// Where a checkpoint is written before it is complete: a name the sweep
/// does not keep, so a checkpoint cut short is never taken for a whole one.
fn partial(image: &Path) -> PathBuf {
    image.with_extension("part")
}

/// Gives the complete checkpoint `partial` its name, durably: from here a
/// pause recorded or not is resumable ([`recover`]).
fn publish(partial: &Path, image: &Path) -> Result<()> {
    std::fs::rename(partial, image)
        .and_then(|_| match image.parent() {
            Some(p) => std::fs::File::open(p)?.sync_all(),
            None => Ok(()),
        })
        .map_err(|e| Error::internal("completing a checkpoint", e))
}

/// Tries to mark memory pause `snap` ready a few times, for a store that
/// fails for a moment; false if it is no longer being made (deleted).
async fn record(store: &TenantStore, snap: &SnapshotRecord) -> Result<bool> {
    let mut wait = std::time::Duration::from_millis(100);
    let mut tries = 0;
    loop {
        match store.finish_snapshot(snap).await {
            Ok(done) => return Ok(done),
            Err(e) if tries >= 3 => return Err(e.into()),
            Err(e) => tracing::warn!(snapshot = %snap.id, "recording a memory pause: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait *= 3;
        tries += 1;
    }
}

/// Makes the record of a memory pause whose checkpoint is complete say so:
/// its snapshot ready and its sandbox paused. False, with nothing kept,
/// if its sandbox ended otherwise meanwhile (deleted) or the snapshot is
/// gone.
async fn settle(store: &TenantStore, data_dir: &Path, snap: &SnapshotRecord) -> Result<bool> {
    let alive = store
        .get_sandbox(&snap.source_sandbox)
        .await?
        .is_some_and(|r| matches!(r.state, SandboxState::Running | SandboxState::Paused));
    let ready = alive
        && match store.finish_snapshot(snap).await? {
            true => true,
            // Already ready (an earlier try), or deleted meanwhile.
            false => store
                .pause_snapshot(&snap.source_sandbox)
                .await?
                .is_some_and(|s| s.id == snap.id),
        };
    if !ready {
        super::snapshots::remove(store, &snap.id).await?;
        let _ = std::fs::remove_dir_all(dir_in(data_dir, snap));
        return Ok(false);
    }
    store
        .end_sandbox(&snap.source_sandbox, SandboxState::Paused, "paused", None)
        .await?;
    Ok(true)
}

/// Records memory pause `snap` (see [`Paused::Unrecorded`]) once the
/// store answers again, trying every few seconds while the server runs.
pub fn settle_later(st: &Shared, store: &TenantStore, snap: SnapshotRecord) {
    let st = st.clone();
    let store = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            match settle(&store, &st.cfg.data_dir, &snap).await {
                Ok(kept) => {
                    tracing::info!(snapshot = %snap.id, kept, "a memory pause was recorded late");
                    return;
                }
                Err(e) => tracing::warn!(snapshot = %snap.id, "recording a memory pause: {e}"),
            }
            if st.draining() {
                // The next start records it ([`recover`]).
                return;
            }
        }
    });
}

/// At start-up, before unfinished snapshots are deleted and running
/// sandboxes reaped: memory pauses whose checkpoint was completed but not
/// recorded (the store failed, or the server was killed in between) are
/// recorded, their sandboxes paused. How many.
pub async fn recover(
    meta: std::sync::Arc<dyn MetaStore>,
    objects: &warden_store::Objects,
    data_dir: &Path,
) -> Result<u64> {
    let mut n = 0;
    for mut snap in meta.unfinished_snapshots().await? {
        let image = dir_in(data_dir, &snap);
        if snap.purpose != SnapshotPurpose::Pause || !is_memory(&snap) || !image.is_dir() {
            continue;
        }
        snap.bytes = size_of(&image);
        snap.held_bytes = snap.bytes;
        let store = TenantStore::new(snap.tenant_id.clone(), meta.clone(), objects);
        if settle(&store, data_dir, &snap).await? {
            tracing::warn!(sandbox = %snap.source_sandbox, "recorded a memory pause cut short");
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes pause snapshot `snap`'s record, then its checkpoint (a failure
/// there is logged: without the record, the start-up sweep deletes it).
pub async fn remove(st: &Shared, store: &TenantStore, snap: &SnapshotRecord) -> Result<()> {
    super::snapshots::remove(store, &snap.id).await?;
    let image = dir(st, snap);
    let gone = tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(partial(&image));
        let gone = match std::fs::remove_dir_all(&image) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        // The sandbox's directory, once it holds no other checkpoint.
        if let Some(parent) = image.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        gone
    })
    .await;
    if let Ok(Err(e)) = gone {
        tracing::error!(snapshot = %snap.id, "deleting a checkpoint: {e}");
    }
    Ok(())
}

/// Refuses a checkpoint the node's disk has no room for: it is about as
/// large as what the sandbox holds in memory, at most its memory limit.
fn check_room(image: &Path, memory_limit: u64) -> Result<()> {
    let Some(parent) = image.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| Error::internal("making the checkpoints directory", e))?;
    let fs = rustix::fs::statvfs(parent)
        .map_err(|e| Error::internal("reading the checkpoints disk's free space", e))?;
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    let needed = memory_limit.saturating_add(DISK_SLACK);
    if free < needed {
        return Err(Error::Capacity(format!(
            "this node has {} MiB of disk free and a pause that keeps memory may need {} MiB \
             (the sandbox's memory limit); pause with mode \"filesystem\" or try later",
            free >> 20,
            needed >> 20
        )));
    }
    Ok(())
}

fn make_private_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::internal("making a checkpoint directory", e))
}

/// The bytes of the files directly in `dir` (a checkpoint is flat).
fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// At start-up: deletes checkpoints that are not their sandbox's pause
/// (a process killed mid-pause, or after deleting the record); returns
/// how many.
pub async fn sweep(meta: &dyn MetaStore, data_dir: &Path) -> Result<u64> {
    let mut removed = 0;
    for (tenant, t) in entries(&root(data_dir)) {
        let Some(tenant) = TenantId::parse(&tenant) else {
            let _ = std::fs::remove_dir_all(t);
            continue;
        };
        for (sandbox, s) in entries(&t) {
            let kept = match SandboxId::parse(&sandbox) {
                Some(id) => meta
                    .pause_snapshot(&tenant, &id)
                    .await?
                    .filter(is_memory)
                    .map(|snap| snap.id.as_str().to_string()),
                None => None,
            };
            for (name, c) in entries(&s) {
                if kept.as_deref() != Some(name.as_str()) {
                    let _ = std::fs::remove_dir_all(c);
                    removed += 1;
                }
            }
            let _ = std::fs::remove_dir(s);
        }
    }
    Ok(removed)
}

/// The entries of directory `dir` by name (none if it cannot be read).
fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pause_record(spec: serde_json::Value) -> SnapshotRecord {
        SnapshotRecord {
            id: SnapshotId::generate(),
            tenant_id: TenantId::generate(),
            name: None,
            source_sandbox: SandboxId::generate(),
            ready: true,
            purpose: SnapshotPurpose::Pause,
            spec,
            files: 0,
            bytes: 0,
            manifest_bytes: 0,
            held_bytes: 0,
            created_at: 0,
        }
    }

    #[test]
    fn a_memory_pause_resumes_only_on_the_protocol_it_was_taken_with() {
        let now = pause_record(serde_json::json!({MARK: true, PROTOCOL: warden_protocol::VERSION}));
        assert!(is_memory(&now));
        assert_eq!(unresumable(&now), None);
        // One taken before records said (protocol 6), and one from a
        // newer Warden: refused, saying why.
        for spec in [
            serde_json::json!({MARK: true}),
            serde_json::json!({MARK: true, PROTOCOL: warden_protocol::VERSION + 1}),
        ] {
            let why = unresumable(&pause_record(spec)).expect("refused");
            assert!(why.contains("protocol"), "{why}");
        }
    }
}

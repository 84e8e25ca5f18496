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
    now_ms, MetaStore, SandboxId, SnapshotId, SnapshotPurpose, SnapshotRecord, TenantId,
    TenantStore,
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
    tenant_dir(st, &snap.tenant_id)
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

/// Saves `live` whole into a new pause snapshot with `spec` (which says
/// what a resume needs besides the checkpoint). On failure nothing is
/// kept and the sandbox goes on running, thawed.
pub async fn pause(
    st: &Shared,
    store: &TenantStore,
    live: &Live,
    mut spec: serde_json::Value,
) -> Result<SnapshotRecord> {
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
        created_at: now_ms(),
    };
    let image = dir(st, &snap);
    check_room(&image, live.memory_limit())?;
    store.begin_snapshot(&snap).await?;
    let taken = async {
        make_private_dir(&image)?;
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
        if let Err(e) = st.sandboxes.checkpoint(live, image.clone()).await {
            // It goes on: its init writes again, to the same host.
            if let Err(t) = live.client.thaw().await {
                tracing::error!(sandbox = %live.id, "thawing after a failed checkpoint: {t}");
            }
            return Err(e);
        }
        snap.bytes = size_of(&image);
        if !store.finish_snapshot(&snap).await? {
            return Err(Error::conflict(
                "the pause was cancelled while it was taken",
            ));
        }
        snap.ready = true;
        Ok(())
    }
    .await;
    match taken {
        Ok(()) => Ok(snap),
        Err(e) => {
            if let Err(r) = remove(st, store, &snap).await {
                tracing::error!(snapshot = %snap.id, "dropping a failed memory pause: {r}");
            }
            Err(e)
        }
    }
}

/// Deletes pause snapshot `snap`'s record, then its checkpoint (a failure
/// there is logged: without the record, the start-up sweep deletes it).
pub async fn remove(st: &Shared, store: &TenantStore, snap: &SnapshotRecord) -> Result<()> {
    super::snapshots::remove(store, &snap.id).await?;
    let image = dir(st, snap);
    let gone = tokio::task::spawn_blocking(move || {
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

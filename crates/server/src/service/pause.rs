//! Pause and resume. E2B's `mode="full"` (processes and memory kept, on
//! gVisor) is `pause_memory`'s; this file is the rest and the default,
//! `mode="filesystem"`: a pause ends a sandbox's
//! processes, keeps its files in a pause snapshot (`service::snapshots`,
//! never listed) and frees its memory, CPU and slot; a resume starts a new
//! sandbox under the same id from that snapshot, with the same image,
//! user, limits, environment, secrets (read again), volumes and network.
//!
//! What makes it safe to repeat: the pause snapshot is complete before the
//! sandbox is torn down (a failed pause leaves it running), the record
//! moves running -> paused and paused -> running by compare-and-set, and a
//! pause snapshot is deleted only once the resumed sandbox holds its files.
//! The record and the snapshot are in the store, so a paused sandbox
//! survives a restart (only running ones are reaped as lost).

use crate::api::{Network, StoredSpec};
use crate::auth::Caller;
use crate::manager::{FromCheckpoint, SandboxLaunch};
use crate::service::audit::{self, Action, Audit};
use crate::service::sandboxes::{input_files, sandbox_id, spec_for, Planned, Shape};
use crate::service::{pause_memory, snapshots, Error, Result};
use crate::state::Shared;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use warden_store::{now_ms, SandboxId, SandboxRecord, SandboxState, TenantId, TenantStore};

/// What a pause keeps besides the sandbox's record (in the pause
/// snapshot's spec, next to the record's `StoredSpec`).
#[derive(Serialize, Deserialize, Default)]
struct Kept {
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    public_ports: bool,
    /// The lifetime it was created with: a resume's default.
    #[serde(default)]
    timeout_secs: u64,
    /// Memory pauses only (see `pause_memory`): when its set-up was over
    /// (its files keep their times through a checkpoint) and whether its
    /// code interpreter runs.
    #[serde(default)]
    changes_since_ns: i64,
    #[serde(default)]
    interpreter: bool,
}

impl Kept {
    /// What pause snapshot `snap` kept (defaults for what it did not).
    fn of(snap: &warden_store::SnapshotRecord) -> Kept {
        snap.spec
            .get("kept")
            .and_then(|k| serde_json::from_value(k.clone()).ok())
            .unwrap_or_default()
    }
}

/// Pauses the caller's running sandbox (`mode` `filesystem`, the default,
/// or `full`: gVisor only). Audited by the teardown when it pauses, here
/// when refused.
pub async fn pause(
    st: &Shared,
    caller: &Caller,
    id: &str,
    mode: Option<&str>,
) -> Result<SandboxRecord> {
    pause_as(st, &caller.store, caller.actor(), id, mode).await
}

/// A sandbox created to pause when its timeout ends, at that end: paused
/// by `system`; whether it was (if not, the caller destroys it).
pub async fn pause_on_timeout(st: &Shared, tenant: TenantId, id: SandboxId) -> bool {
    let store = st.tenant_store(tenant);
    match pause_as(st, &store, "system", id.as_str(), None).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(sandbox = %id, "pausing at its timeout failed, destroying it: {e}");
            false
        }
    }
}

async fn pause_as(
    st: &Shared,
    store: &TenantStore,
    actor: &str,
    id: &str,
    mode: Option<&str>,
) -> Result<SandboxRecord> {
    let result = pause_inner(st, store, actor, id, mode).await;
    if let Err(e) = &result {
        let entry = Audit {
            actor,
            action: Action::SandboxPause,
            target: id,
            outcome: e.code(),
        };
        audit::append(st.meta.as_ref(), store.tenant_id(), entry).await?;
    }
    result
}

async fn pause_inner(
    st: &Shared,
    store: &TenantStore,
    actor: &str,
    id: &str,
    mode: Option<&str>,
) -> Result<SandboxRecord> {
    let memory = match mode {
        None | Some("filesystem") => false,
        Some("full") => true,
        Some(m) => return Err(Error::invalid(format!("mode {m:?}: filesystem or full"))),
    };
    let sid = sandbox_id(id)?;
    let live = match st.sandboxes.get(store.tenant_id(), &sid) {
        Some(l) => l,
        None => {
            return Err(match store.get_sandbox(&sid).await? {
                Some(r) => Error::conflict(format!("the sandbox is {}", r.state.as_str())),
                None => Error::not_found("sandbox"),
            })
        }
    };
    if !live.takes_slot() {
        return Err(Error::conflict("a review job's sandbox cannot be paused"));
    }
    let _one = live.lifecycle.lock().await;
    if live.end_reason().is_some() {
        return Err(Error::conflict("the sandbox has just ended"));
    }
    let record = store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| Error::not_found("sandbox"))?;
    if memory {
        if let Some(why) = pause_memory::refusal(&StoredSpec::of(&record.spec)) {
            return Err(Error::invalid(why));
        }
    }
    // Held through the pause: no interpreter starts half-way through it.
    let interpreter = live.interpreter.lock().await;
    let kept = Kept {
        env: live.plain_env.clone(),
        public_ports: live.public_ports,
        timeout_secs: ((record.expires_at - record.created_at) / 1000).max(1) as u64,
        changes_since_ns: live.changes_since_ns,
        interpreter: *interpreter,
    };
    let mut spec = record.spec.clone();
    if let Some(obj) = spec.as_object_mut() {
        obj.insert(
            "kept".into(),
            serde_json::to_value(&kept).map_err(|e| Error::internal("encoding a pause", e))?,
        );
    }
    let (snap, unrecorded) = if memory {
        match pause_memory::pause(st, store, &live, spec).await? {
            pause_memory::Paused::Recorded(snap) => (snap, None),
            pause_memory::Paused::Unrecorded(snap, e) => (snap, Some(e)),
        }
    } else {
        // Nothing runs while its files are taken: they are what it was.
        live.client.kill_all().await?;
        let snap = snapshots::take(
            st,
            store,
            &live,
            spec,
            None,
            warden_store::SnapshotPurpose::Pause,
        )
        .await?
        .0;
        (snap, None)
    };
    drop(interpreter);
    let ended = st
        .sandboxes
        .destroy(
            store.tenant_id(),
            &live.id,
            SandboxState::Paused,
            "paused",
            actor,
        )
        .await;
    if let Some(e) = unrecorded {
        // Its processes ended with the checkpoint, which holds all it was:
        // torn down as paused above (if the store took that), recorded
        // fully once the store answers.
        pause_memory::settle_later(st, store, snap);
        return Err(Error::internal(
            "recording the pause (the sandbox's memory is saved; it shows as paused once the \
             store answers again)",
            e,
        ));
    }
    if ended.is_none() {
        // Ended another way meanwhile (deleted, timed out): nothing to keep.
        remove_pause_snapshot(st, store, &snap).await?;
        return Err(Error::conflict(
            "the sandbox ended while it was being paused",
        ));
    }
    store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| Error::not_found("sandbox"))
}

/// Resumes the caller's paused sandbox (audited); a running one is
/// answered as it is. The bool says whether it was resumed now.
pub async fn resume(
    st: &Shared,
    caller: &Caller,
    id: &str,
    timeout_secs: Option<u64>,
) -> Result<(SandboxRecord, bool)> {
    resume_as(st, &caller.store, caller.actor(), id, timeout_secs).await
}

/// Resumes a paused sandbox made with `auto_resume` because a request
/// reached it (through `/v1` or E2B's envd and ports), as `actor`; the
/// live sandbox, or None if it is not such a sandbox.
pub async fn auto_resume(
    st: &Shared,
    store: &TenantStore,
    actor: &str,
    id: &SandboxId,
) -> Result<Option<Arc<crate::manager::Live>>> {
    let Some(record) = store.get_sandbox(id).await? else {
        return Ok(None);
    };
    if record.state != SandboxState::Paused || !StoredSpec::of(&record.spec).auto_resume {
        return Ok(None);
    }
    resume_as(st, store, actor, id.as_str(), None).await?;
    Ok(st.sandboxes.get(store.tenant_id(), id))
}

/// Resumes sandbox `id` for a request to one of its ports, if it is
/// paused with its memory (a filesystem resume restarts no process, so
/// nothing would listen) and made with `auto_resume`, and the request may
/// reach its ports (they are public, or `tokened`: it carries a token for
/// them). The live sandbox, or None (a failed resume is logged).
pub async fn wake_for_port(
    st: &Shared,
    id: &SandboxId,
    tokened: bool,
) -> Option<Arc<crate::manager::Live>> {
    let tenant = match st.meta.sandbox_tenant(id).await {
        Ok(t) => t?,
        Err(e) => {
            tracing::warn!(sandbox = %id, "finding a sandbox's tenant: {e}");
            return None;
        }
    };
    let store = st.tenant_store(tenant);
    let snap = store.pause_snapshot(id).await.ok()??;
    let kept = Kept::of(&snap);
    if !pause_memory::is_memory(&snap) || !(kept.public_ports || tokened) {
        return None;
    }
    match auto_resume(st, &store, "port", id).await {
        Ok(live) => live,
        Err(e) => {
            tracing::warn!(sandbox = %id, "resuming on port traffic: {e}");
            None
        }
    }
}

async fn resume_as(
    st: &Shared,
    store: &TenantStore,
    actor: &str,
    id: &str,
    timeout_secs: Option<u64>,
) -> Result<(SandboxRecord, bool)> {
    let result = resume_inner(st, store, id, timeout_secs).await;
    let outcome = match &result {
        Ok((_, false)) => return result,
        Ok((_, true)) => "ok",
        Err(e) => e.code(),
    };
    let entry = Audit {
        actor,
        action: Action::SandboxResume,
        target: id,
        outcome,
    };
    audit::append(st.meta.as_ref(), store.tenant_id(), entry).await?;
    result
}

/// One resume of a sandbox at a time on this node: two would start two
/// sandboxes under one id, sharing its host directory until the loser's
/// cleanup. The second waits, then finds it running.
fn resuming(id: &SandboxId) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<SandboxId, Arc<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Forget the ones nobody holds or waits for.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks.entry(id.clone()).or_default().clone()
}

async fn resume_inner(
    st: &Shared,
    store: &TenantStore,
    id: &str,
    timeout_secs: Option<u64>,
) -> Result<(SandboxRecord, bool)> {
    if st.draining() {
        return Err(Error::ShuttingDown("the server is shutting down".into()));
    }
    let sid = sandbox_id(id)?;
    let lock = resuming(&sid);
    let _one = lock.lock().await;
    let record = store
        .get_sandbox(&sid)
        .await?
        .ok_or_else(|| Error::not_found("sandbox"))?;
    match record.state {
        SandboxState::Paused => {}
        SandboxState::Running if st.sandboxes.get(store.tenant_id(), &sid).is_some() => {
            return Ok((record, false))
        }
        other => {
            return Err(Error::conflict(format!(
                "the sandbox is {} and cannot be resumed",
                other.as_str()
            )))
        }
    }
    let snap = store
        .pause_snapshot(&sid)
        .await?
        .ok_or_else(|| Error::conflict("the sandbox is paused but its files are missing"))?;
    let stored = StoredSpec::of(&snap.spec);
    let kept = Kept::of(&snap);
    let memory = pause_memory::is_memory(&snap);
    let (manifest, from_checkpoint) = if memory {
        if let Some(why) = pause_memory::unresumable(&snap) {
            return Err(Error::conflict(why));
        }
        let image = pause_memory::dir(st, &snap);
        if !image.is_dir() {
            return Err(Error::conflict(
                "the sandbox was paused with its memory, and its checkpoint is not on this \
                 node: it cannot be resumed here (delete it to let it go)",
            ));
        }
        let from = FromCheckpoint {
            image,
            changes_since_ns: kept.changes_since_ns,
            interpreter: kept.interpreter,
        };
        (None, Some(from))
    } else {
        (Some(snapshots::manifest_of(store, &snap).await?), None)
    };
    let timeout = timeout_secs
        .or((kept.timeout_secs > 0).then_some(kept.timeout_secs))
        .unwrap_or(300);
    let network: Network = stored.network.clone();
    let Planned { mut spec, .. } = spec_for(
        &Shape {
            image: &stored.image,
            isolation: Some(stored.isolation.name()),
            limits: &stored.limits,
            env: &kept.env,
            network: Some(&network),
            workdir: Some(&stored.workdir),
            timeout_secs: timeout,
            user: Some(stored.user.name()),
            writable_root: stored.writable_root,
        },
        &st.cfg,
        crate::service::images::resolve(st, store, &stored.image).await?,
    )?;
    st.sandboxes.check_isolation(spec.isolation).await?;
    let files = input_files(store, &stored.files).await?;
    let secrets = crate::secrets::resolve(
        st.vault.as_ref(),
        store,
        &stored.secret_names,
        kept.env.keys(),
    )
    .await?;
    secrets.add_env(&mut spec.env);
    let (mounts, volumes) = crate::service::volumes::leases_for(st, store, &stored.volumes).await?;
    spec.mounts.extend(mounts);
    spec.validate().map_err(|e| Error::invalid(e.to_string()))?;
    let now = now_ms();
    let resumed = SandboxRecord {
        state: SandboxState::Running,
        expires_at: now + timeout as i64 * 1000,
        ended_at: None,
        end_reason: None,
        ..record
    };
    let record = st
        .sandboxes
        .create(
            store,
            SandboxLaunch {
                spec,
                files,
                record: resumed,
                takes_slot: true,
                masker: secrets.masker.clone(),
                public_ports: kept.public_ports,
                volumes,
                restore: manifest,
                resuming: true,
                plain_env: kept.env,
                pause_on_timeout: stored.pause_on_timeout,
                from_checkpoint,
                keep_base: (!memory).then(|| crate::snapshots::base::KeepBase {
                    snapshot: snap.id.clone(),
                    tenant: st
                        .buffers
                        .bases
                        .get(store.tenant_id(), st.cfg.server.base_tenant_bytes),
                    total: st.buffers.total.clone(),
                }),
            },
        )
        .await?;
    // Its files are in the running sandbox now. Those of a filesystem
    // pause stay stored while it runs, as its base (its next pause takes
    // what it has not touched from them); if it has none, they go.
    let has_base = st
        .sandboxes
        .get(store.tenant_id(), &sid)
        .is_some_and(|l| l.base().is_some_and(|b| b.snapshot == snap.id));
    let kept = has_base
        && match store.rebase_snapshot(&snap.id).await {
            Ok(kept) => kept,
            Err(e) => {
                // It runs all the same; its next pause reads every file.
                tracing::warn!(sandbox = %sid, "keeping its pause as its base: {e}");
                false
            }
        };
    if !kept {
        if let Some(live) = st.sandboxes.get(store.tenant_id(), &sid) {
            live.drop_base();
        }
        remove_pause_snapshot(st, store, &snap).await?;
    }
    Ok((record, true))
}

/// Deletes a paused sandbox (and the files it kept); false if it was not
/// paused.
pub async fn delete_paused(st: &Shared, caller: &Caller, record: &SandboxRecord) -> Result<bool> {
    if record.state != SandboxState::Paused {
        return Ok(false);
    }
    let store = &caller.store;
    if !store
        .end_paused_sandbox(&record.id, SandboxState::Stopped, "deleted")
        .await?
    {
        return Ok(false);
    }
    while let Some(snap) = store.pause_snapshot(&record.id).await? {
        remove_pause_snapshot(st, store, &snap).await?;
    }
    audit::by_caller(
        st,
        caller,
        Action::SandboxDelete,
        record.id.as_str(),
        "deleted",
    )
    .await?;
    Ok(true)
}

/// Deletes a pause snapshot with what it holds: its files' blobs, or (a
/// memory pause) its checkpoint.
async fn remove_pause_snapshot(
    st: &Shared,
    store: &TenantStore,
    snap: &warden_store::SnapshotRecord,
) -> Result<()> {
    if pause_memory::is_memory(snap) {
        pause_memory::remove(st, store, snap).await
    } else {
        snapshots::remove(store, &snap.id).await.map(|_| ())
    }
}

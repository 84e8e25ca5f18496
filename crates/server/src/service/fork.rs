//! Forking a live sandbox: a new sandbox on the same image, tier, user,
//! limits, environment (its secrets read again), `/input` files, volumes,
//! network and labels, holding the source's files as they were at the
//! fork. The files are taken as a snapshot takes them (purpose `fork`,
//! never listed, not counted in `max_snapshots`) and kept only until the
//! new sandbox has them; the source keeps running. Processes are not
//! carried over (a fork is of the filesystem, like a snapshot).

use crate::api::{CreateSandbox, StoredSpec};
use crate::auth::Caller;
use crate::service::{sandboxes, snapshots, Error, Result};
use crate::state::Shared;
use std::collections::BTreeMap;
use warden_store::{SandboxRecord, SnapshotPurpose};

/// What a fork may set for itself.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkSandbox {
    /// Its lifetime (default 300 s).
    pub timeout_secs: Option<u64>,
    /// Its labels (default: the source's).
    pub labels: Option<BTreeMap<String, String>>,
}

/// Forks the caller's live sandbox `id`; the new sandbox's record.
pub async fn fork(
    st: &Shared,
    caller: &Caller,
    id: &str,
    ask: ForkSandbox,
) -> Result<SandboxRecord> {
    let mut made = fork_n(st, caller, id, 1, ask).await?;
    made.pop()
        .unwrap_or_else(|| Err(Error::internal("forking", "no fork was made")))
}

/// Forks the caller's live sandbox `id` `count` times from one taking of
/// its files: each fork's outcome on its own (one may hit a quota where
/// the one before did not). An error here is the source's (not found, not
/// running, its files too large).
pub async fn fork_n(
    st: &Shared,
    caller: &Caller,
    id: &str,
    count: usize,
    ask: ForkSandbox,
) -> Result<Vec<Result<SandboxRecord>>> {
    let live = sandboxes::live(st, caller, id).await?;
    let record = caller
        .store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| Error::not_found("sandbox"))?;
    let shape = StoredSpec::of(&record.spec);
    let (snap, manifest) = snapshots::take(
        st,
        &caller.store,
        &live,
        record.spec.clone(),
        None,
        SnapshotPurpose::Fork,
    )
    .await?;
    let mut made = Vec::with_capacity(count);
    for _ in 0..count {
        let req = CreateSandbox {
            image: Some(shape.image.clone()),
            isolation: Some(shape.isolation.name().into()),
            limits: Some(shape.limits.clone()),
            env: live.plain_env.clone(),
            secrets: shape.secret_names.clone(),
            files: shape.files.clone(),
            network: Some(shape.network.clone()),
            workdir: Some(shape.workdir.clone()),
            user: Some(shape.user.name().into()),
            writable_root: shape.writable_root,
            volumes: shape.volumes.clone(),
            labels: ask.labels.clone().unwrap_or_else(|| record.labels.clone()),
            timeout_secs: ask.timeout_secs,
            public_ports: live.public_ports,
            on_timeout: shape.pause_on_timeout.then(|| "pause".into()),
            auto_resume: shape.auto_resume,
            ..CreateSandbox::default()
        };
        let from = (snap.clone(), shape.clone(), manifest.clone());
        made.push(sandboxes::create_audited_from(caller, st, req, Some(from)).await);
    }
    // The new sandboxes have their files (or failed): the fork's copy goes.
    if let Err(e) = snapshots::remove(&caller.store, &snap.id).await {
        tracing::warn!(snapshot = %snap.id, "dropping a fork's files: {e}");
    }
    Ok(made)
}

//! A tenant's snapshots: take one from a live sandbox (which keeps
//! running), list, find, delete, and what a sandbox made from one needs.
//!
//! A snapshot is begun in the store (counted against `max_snapshots`),
//! filled (each blob's row made in the transaction that checks the
//! storage quota), its manifest stored, then marked ready. A failure
//! deletes it, which frees the blobs nothing else holds; a crash leaves it
//! unfinished, and [`sweep`] deletes it at the next start.

use crate::api::StoredSpec;
use crate::auth::Caller;
use crate::manager::Live;
use crate::service::audit::{self, Action};
use crate::service::{Error, Result};
use crate::snapshots::{capture, Manifest, Scope};
use crate::state::{AppState, Shared};
use bytes::Bytes;
use warden_store::{
    now_ms, MetaStore, ObjectKind, Objects, SnapshotId, SnapshotPurpose, SnapshotRecord, TenantId,
    TenantStore,
};

/// A name: as a volume's, and not shaped like a snapshot id.
pub fn check_name(name: &str) -> Result<()> {
    super::check_resource_name("snapshot", name)?;
    if SnapshotId::parse(name).is_some() {
        return Err(Error::invalid(format!(
            "snapshot name {name:?} has the shape of a snapshot id"
        )));
    }
    Ok(())
}

/// Takes a snapshot of the caller's live sandbox `sandbox` (audited,
/// whatever the outcome).
pub async fn create(
    st: &Shared,
    caller: &Caller,
    sandbox: &str,
    name: Option<&str>,
) -> Result<SnapshotRecord> {
    let result = create_inner(st, caller, sandbox, name).await;
    let (target, outcome) = match &result {
        Ok(s) => (s.id.to_string(), "ok"),
        Err(e) => (String::new(), e.code()),
    };
    audit::by_caller(st, caller, Action::SnapshotCreate, &target, outcome).await?;
    result
}

async fn create_inner(
    st: &Shared,
    caller: &Caller,
    sandbox: &str,
    name: Option<&str>,
) -> Result<SnapshotRecord> {
    if let Some(n) = name {
        check_name(n)?;
    }
    let live = super::sandboxes::live(st, caller, sandbox).await?;
    let record = caller
        .store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| Error::not_found("sandbox"))?;
    take(
        st,
        &caller.store,
        &live,
        record.spec,
        name,
        SnapshotPurpose::User,
    )
    .await
    .map(|(snap, _)| snap)
}

/// Takes a snapshot of `live` (whose record keeps `spec`, what a sandbox
/// made from the snapshot starts as): begun in the store, filled, its
/// manifest stored, marked ready; deleted again on any failure. Returns
/// the manifest too, for a caller that uses it at once.
pub async fn take(
    st: &AppState,
    store: &TenantStore,
    live: &Live,
    spec: serde_json::Value,
    name: Option<&str>,
    purpose: SnapshotPurpose,
) -> Result<(SnapshotRecord, Manifest)> {
    let shape = StoredSpec::of(&spec);
    let scope = Scope::of(
        shape.writable_root,
        shape.volumes.iter().map(|v| v.path.clone()),
    );
    take_in(
        st,
        store,
        live,
        (spec, name, purpose),
        &scope,
        live.changes_since_ns,
    )
    .await
}

/// Takes what changed in `live` within `scope` since `since_ns` as a
/// snapshot with `spec`, `name` and `purpose`.
pub async fn take_in(
    st: &AppState,
    store: &TenantStore,
    live: &Live,
    (spec, name, purpose): (serde_json::Value, Option<&str>, SnapshotPurpose),
    scope: &Scope,
    since_ns: i64,
) -> Result<(SnapshotRecord, Manifest)> {
    let mut snap = SnapshotRecord {
        id: SnapshotId::generate(),
        tenant_id: store.tenant_id().clone(),
        name: name.map(str::to_string),
        source_sandbox: live.id.clone(),
        ready: false,
        purpose,
        spec,
        files: 0,
        bytes: 0,
        manifest_bytes: 0,
        held_bytes: 0,
        created_at: now_ms(),
    };
    store
        .begin_snapshot(&snap)
        .await
        .map_err(capture::quota_error)?;
    let base = live.base();
    let taken = capture::capture(
        &live.client,
        store,
        &snap.id,
        (scope, since_ns, base.as_deref()),
        st.cfg.limits.max_snapshot_bytes,
    )
    .await;
    let finished = async {
        let taken = taken?;
        let manifest = serde_json::to_vec(&taken.manifest)
            .map_err(|e| Error::internal("encoding a snapshot's manifest", e))?;
        snap.files = taken.files;
        snap.bytes = taken.bytes;
        snap.manifest_bytes = manifest.len() as u64;
        store
            .objects()
            .put_bytes(
                ObjectKind::Snapshots,
                snap.id.as_str(),
                Bytes::from(manifest),
            )
            .await?;
        if !store.finish_snapshot(&snap).await? {
            return Err(Error::conflict(
                "the snapshot was deleted while it was taken",
            ));
        }
        snap.ready = true;
        Ok(taken.manifest)
    }
    .await;
    match finished {
        Ok(manifest) => Ok((snap, manifest)),
        Err(e) => {
            discard(store, &snap.id).await;
            Err(e)
        }
    }
}

/// Deletes snapshot `id`, the base of a sandbox of `tenant` that ended
/// (what it kept is deleted at the next start if this fails).
pub async fn drop_base(st: Shared, tenant: TenantId, id: SnapshotId) {
    if let Err(e) = remove(&st.tenant_store(tenant), &id).await {
        tracing::warn!(snapshot = %id, "deleting an ended sandbox's base: {e}");
    }
}

/// Deletes a snapshot that could not be finished, with what it held.
async fn discard(store: &TenantStore, id: &SnapshotId) {
    if let Err(e) = remove(store, id).await {
        tracing::error!(snapshot = %id, "dropping an unfinished snapshot: {e}");
    }
}

/// Deletes snapshot `id` and the blobs only it held; whether it existed.
pub async fn remove(store: &TenantStore, id: &SnapshotId) -> Result<bool> {
    let Some(freed) = store.delete_snapshot(id).await? else {
        return Ok(false);
    };
    let objects = store.objects();
    for key in freed {
        objects.delete(ObjectKind::Blobs, key.as_str()).await?;
    }
    objects.delete(ObjectKind::Snapshots, id.as_str()).await?;
    Ok(true)
}

/// The caller's snapshot by id or name (another tenant's is not found).
pub async fn find(store: &TenantStore, id_or_name: &str) -> Result<SnapshotRecord> {
    store
        .find_snapshot(id_or_name)
        .await?
        .ok_or_else(|| Error::not_found("snapshot"))
}

/// Deletes the caller's snapshot (audited). Sandboxes made from it keep
/// their files: they were copied in at their start.
pub async fn delete(st: &AppState, caller: &Caller, id_or_name: &str) -> Result<()> {
    let snap = find(&caller.store, id_or_name).await?;
    if !snap.ready {
        return Err(Error::conflict(
            "the snapshot is still being taken; delete it once it is ready",
        ));
    }
    let existed = remove(&caller.store, &snap.id).await?;
    if !existed {
        return Err(Error::not_found("snapshot"));
    }
    audit::by_caller(st, caller, Action::SnapshotDelete, snap.id.as_str(), "ok").await?;
    Ok(())
}

/// A ready snapshot and its manifest, for a sandbox made from it.
pub async fn for_start(
    store: &TenantStore,
    id_or_name: &str,
) -> Result<(SnapshotRecord, StoredSpec, Manifest)> {
    let snap = find(store, id_or_name).await?;
    if !snap.ready {
        return Err(Error::conflict("the snapshot is still being taken"));
    }
    let manifest = manifest_of(store, &snap).await?;
    let spec = StoredSpec::of(&snap.spec);
    Ok((snap, spec, manifest))
}

/// A ready snapshot's manifest.
pub async fn manifest_of(store: &TenantStore, snap: &SnapshotRecord) -> Result<Manifest> {
    manifest_by_id(store, &snap.id).await
}

/// The manifest of the tenant's ready snapshot `id`, whatever its purpose.
pub async fn manifest_by_id(store: &TenantStore, id: &SnapshotId) -> Result<Manifest> {
    let bytes = store
        .objects()
        .get_bytes(ObjectKind::Snapshots, id.as_str())
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::internal("reading a snapshot's manifest", e))
}

/// At start-up: deletes the snapshots a dead process left unfinished (one
/// node owns the store today; with many, only the dead ones' would go).
pub async fn sweep(meta: std::sync::Arc<dyn MetaStore>, objects: &Objects) -> Result<u64> {
    let mut n = 0;
    for snap in meta.unfinished_snapshots().await? {
        let store = TenantStore::new(snap.tenant_id.clone(), meta.clone(), objects);
        if remove(&store, &snap.id).await? {
            tracing::warn!(snapshot = %snap.id, "a snapshot cut short by a restart was deleted");
            n += 1;
        }
    }
    Ok(n)
}

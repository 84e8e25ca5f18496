//! A tenant's volumes: named persistent file systems that sandboxes mount
//! read-write or read-only. The record (name, size, owner) is in the
//! store; the bytes are on this node (`warden_runtime::volume`), so moving
//! them to the object store for many nodes changes only that module and
//! [`leases_for`].
//!
//! Create records first (the quota check and the insert are one store
//! transaction), then makes the file system, and drops the record if that
//! fails. Delete takes the volume out of use, drops the record, then the
//! bytes. A crash between the steps leaves a record without an image or an
//! image without a record; [`sweep`] removes either at the next start.

use crate::api_volumes::{Volume, VolumeMount};
use crate::auth::Caller;
use crate::service::audit::{self, Action};
use crate::service::{Error, Result};
use crate::state::AppState;
use warden_runtime::volume::{Lease, VolumeError, Volumes, MIN_BYTES};
use warden_store::{now_ms, MetaStore, StoreError, TenantStore, VolumeId, VolumeRecord};

/// A volume's size when the request names none.
pub const DEFAULT_BYTES: u64 = 1 << 30;

/// Volumes one sandbox may mount.
pub const MAX_PER_SANDBOX: usize = 8;

/// A name: 1-63 of `[A-Za-z0-9._-]`, starting with a letter or digit, and
/// not shaped like a volume id (a name is looked up as an id first).
pub fn check_name(name: &str) -> Result<()> {
    super::check_resource_name("volume", name)?;
    if VolumeId::parse(name).is_some() {
        return Err(Error::invalid(format!(
            "volume name {name:?} has the shape of a volume id"
        )));
    }
    Ok(())
}

/// Runs `f` on the node's volume store off the async threads (it mounts,
/// unlinks gigabytes, or waits for the store's lock while another does).
async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&Volumes) -> std::result::Result<T, VolumeError> + Send + 'static,
) -> Result<T> {
    let vols = st.volumes.clone();
    tokio::task::spawn_blocking(move || f(&vols))
        .await
        .map_err(|e| Error::internal("the volume store", e))?
        .map_err(volume_error)
}

fn volume_error(e: VolumeError) -> Error {
    match e {
        VolumeError::InUse(_) => {
            Error::conflict("the volume is mounted in a live sandbox; destroy it first")
        }
        VolumeError::Making(_) => {
            Error::conflict("the volume is still being created; delete it once it exists")
        }
        VolumeError::TooSmall(_) => Error::invalid(e.to_string()),
        VolumeError::NoSpace { .. } => {
            Error::Capacity("this node's disk has no room for the volume".into())
        }
        VolumeError::Missing(_) => Error::internal("finding the volume's bytes", e),
        other => Error::internal("the volume store", other),
    }
}

/// What the API shows of `vols`: each record, how much of it is used, and
/// whether a sandbox holds it now (read off the node, so not on the
/// async threads: a mount in progress holds the store's lock).
pub async fn shown(st: &AppState, vols: Vec<VolumeRecord>) -> Result<Vec<Volume>> {
    let store = st.volumes.clone();
    tokio::task::spawn_blocking(move || {
        vols.into_iter()
            .map(|v| {
                let used = store.usage(v.id.as_str()).map(|(used, _)| used);
                let in_use = store.in_use(v.id.as_str());
                Volume::new(v, used, in_use)
            })
            .collect()
    })
    .await
    .map_err(|e| Error::internal("reading volumes", e))
}

/// [`shown`] of one volume.
pub async fn shown_one(st: &AppState, v: VolumeRecord) -> Result<Volume> {
    let mut one = shown(st, vec![v]).await?;
    one.pop()
        .ok_or_else(|| Error::internal("reading volumes", "none"))
}

/// Creates the caller's volume `name` of `bytes` (default 1 GiB), audited
/// whatever the outcome.
pub async fn create(
    st: &AppState,
    caller: &Caller,
    name: &str,
    bytes: Option<u64>,
) -> Result<VolumeRecord> {
    let result = create_inner(st, caller, name, bytes).await;
    let (target, outcome) = match &result {
        Ok(v) => (v.id.to_string(), "ok"),
        Err(e) => (String::new(), e.code()),
    };
    audit::by_caller(st, caller, Action::VolumeCreate, &target, outcome).await?;
    result
}

async fn create_inner(
    st: &AppState,
    caller: &Caller,
    name: &str,
    bytes: Option<u64>,
) -> Result<VolumeRecord> {
    check_name(name)?;
    let max = st.cfg.limits.max_volume_bytes;
    let size = bytes.unwrap_or(DEFAULT_BYTES.min(max));
    if !(MIN_BYTES..=max).contains(&size) {
        return Err(Error::invalid(format!(
            "size_bytes must be {MIN_BYTES} to {max} ([limits] max_volume_bytes)"
        )));
    }
    let record = VolumeRecord {
        id: VolumeId::generate(),
        tenant_id: caller.store.tenant_id().clone(),
        name: name.to_string(),
        size_bytes: size & !4095,
        created_at: now_ms(),
    };
    caller
        .store
        .create_volume(&record)
        .await
        .map_err(|e| match e {
            e @ (StoreError::StorageQuota { .. } | StoreError::CountQuota(_)) => {
                Error::Quota(e.to_string())
            }
            e => e.into(),
        })?;
    let id = record.id.to_string();
    let made = blocking(st, move |vols| vols.create(&id, size)).await;
    if let Err(e) = made {
        // Nothing of it is kept: the record goes with the failed bytes.
        if let Err(d) = caller.store.delete_volume(&record.id).await {
            tracing::error!(volume = %record.id, "dropping a volume's record after a failed create: {d}");
        }
        return Err(e);
    }
    // Its record gone meanwhile (its tenant deleted): nor are its bytes kept.
    if caller
        .store
        .find_volume(record.id.as_str())
        .await?
        .is_none()
    {
        let _ = blocking(st, move |v| v.remove_orphan(record.id.as_str())).await;
        return Err(Error::not_found(
            "volume (deleted while it was being created)",
        ));
    }
    Ok(record)
}

/// The caller's volume named by id or name (another tenant's is not
/// found, by either).
pub async fn find(store: &TenantStore, id_or_name: &str) -> Result<VolumeRecord> {
    store
        .find_volume(id_or_name)
        .await?
        .ok_or_else(|| Error::not_found(format!("volume {id_or_name:?}")))
}

/// Deletes the caller's volume and its bytes; `409` while a sandbox has it
/// mounted.
pub async fn delete(st: &AppState, caller: &Caller, id_or_name: &str) -> Result<()> {
    let v = find(&caller.store, id_or_name).await?;
    let id = v.id.to_string();
    let i = id.clone();
    blocking(st, move |vols| vols.retire(&i)).await?;
    if let Err(e) = caller.store.delete_volume(&v.id).await {
        st.volumes.restore(&id);
        return Err(e.into());
    }
    let i = id.clone();
    if let Err(e) = blocking(st, move |vols| vols.purge(&i)).await {
        // The record is gone; the start-up sweep removes the bytes.
        tracing::error!(volume = %id, "freeing a deleted volume's bytes: {e}");
    }
    Ok(audit::by_caller(st, caller, Action::VolumeDelete, &id, "ok").await?)
}

/// Checks a request's volumes without mounting them (a review's, at
/// submit): at most [`MAX_PER_SANDBOX`], each the tenant's, each at its
/// own path. Returns their records, in order.
pub async fn check_mounts(store: &TenantStore, asked: &[VolumeMount]) -> Result<Vec<VolumeRecord>> {
    if asked.len() > MAX_PER_SANDBOX {
        return Err(Error::invalid(format!(
            "a sandbox mounts at most {MAX_PER_SANDBOX} volumes"
        )));
    }
    let mut found = Vec::with_capacity(asked.len());
    for (i, m) in asked.iter().enumerate() {
        if asked[..i].iter().any(|x| x.path == m.path) {
            return Err(Error::invalid(format!("two volumes at {:?}", m.path)));
        }
        found.push(find(store, &m.volume).await?);
    }
    Ok(found)
}

/// The mounts `asked` would give a spec, with a placeholder source: for
/// checking their paths against the spec's rules before anything is
/// mounted.
pub fn planned_mounts(asked: &[VolumeMount]) -> Vec<warden_spec::Mount> {
    asked
        .iter()
        .map(|m| warden_spec::Mount {
            source: "/volume".into(),
            target: m.path.clone(),
            read_only: m.read_only,
            sandbox_ids: true,
        })
        .collect()
}

/// The mounts (and the holds that keep them mounted for the sandbox's
/// life) for the volumes a create or a job's attempt names: checked as
/// [`check_mounts`] does (the spec's validation then refuses the standard
/// layout's paths).
pub async fn leases_for(
    st: &AppState,
    store: &TenantStore,
    asked: &[VolumeMount],
) -> Result<(Vec<warden_spec::Mount>, Vec<Lease>)> {
    let found = check_mounts(store, asked).await?;
    let mut mounts = Vec::new();
    let mut leases = Vec::new();
    for (m, v) in asked.iter().zip(found) {
        let id = v.id.to_string();
        let lease = blocking(st, move |vols| vols.lease(&id)).await?;
        mounts.push(warden_spec::Mount {
            source: lease.dir().to_string_lossy().into_owned(),
            target: m.path.clone(),
            read_only: m.read_only,
            sandbox_ids: true,
        });
        leases.push(lease);
    }
    Ok((mounts, leases))
}

/// At start-up: drops records whose image is missing and images no record
/// names (each the trace of a create or delete a crash cut short).
pub async fn sweep(meta: &dyn MetaStore, vols: &Volumes) -> Result<()> {
    let records = meta.all_volumes().await?;
    for v in &records {
        if !vols.exists(v.id.as_str()) {
            tracing::warn!(volume = %v.id, "a volume's record had no bytes (a create or delete cut short); dropped");
            meta.delete_volume(&v.tenant_id, &v.id).await?;
        }
    }
    for id in vols.ids() {
        if !records.iter().any(|v| v.id.as_str() == id) {
            tracing::warn!(volume = %id, "a volume's bytes had no record (a delete cut short); removed");
            vols.remove_orphan(&id).map_err(volume_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["data", "my-vol_1.v2", "A", &"x".repeat(63)] {
            check_name(ok).unwrap();
        }
        let id = VolumeId::generate().to_string();
        for bad in ["", "-x", ".x", "a/b", "a b", "é", &"x".repeat(64), &id] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}

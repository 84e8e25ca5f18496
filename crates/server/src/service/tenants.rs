//! Tenants and their API keys (the operator's side): create, look up,
//! disable and enable, delete with everything they stored, and their keys.
//! Every change is audited in the tenant's own chain, as the admin's.

use crate::auth::{hash_hex, new_secret};
use crate::service::audit::{self, Action, Audit};
use crate::service::{Error, Result};
use crate::state::AppState;
use warden_store::{ApiKey, KeyId, Quotas, SandboxState, Tenant, TenantId};

const ACTOR: &str = "admin";

/// A tenant id from a path: one that does not parse names no tenant.
pub fn tenant_id(id: &str) -> Result<TenantId> {
    TenantId::parse(id).ok_or_else(|| Error::not_found("tenant"))
}

async fn record(
    st: &AppState,
    tenant: &TenantId,
    action: Action,
    target: &str,
    outcome: &str,
) -> Result<()> {
    let entry = Audit {
        actor: ACTOR,
        action,
        target,
        outcome,
    };
    Ok(audit::append(st.meta.as_ref(), tenant, entry).await?)
}

/// The tenant, or `not_found`.
pub async fn get(st: &AppState, id: &TenantId) -> Result<Tenant> {
    st.meta
        .get_tenant(id)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))
}

/// A new tenant named `name` (1-128 characters, no control characters)
/// with `quotas`.
pub async fn create(st: &AppState, name: &str, quotas: Quotas) -> Result<Tenant> {
    if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "tenant names are 1-128 characters with no control characters",
        ));
    }
    let t = st.meta.create_tenant(name.trim(), quotas).await?;
    record(st, &t.id, Action::TenantCreate, t.id.as_str(), "ok").await?;
    Ok(t)
}

/// Disables (or enables again) a tenant: a disabled tenant's keys stop
/// working, and its sandboxes stop now rather than at their timeout.
pub async fn set_disabled(st: &AppState, id: &TenantId, disabled: bool) -> Result<Tenant> {
    if !st.meta.set_tenant_disabled(id, disabled).await? {
        return Err(Error::not_found("tenant"));
    }
    let action = if disabled {
        Action::TenantDisable
    } else {
        Action::TenantEnable
    };
    record(st, id, action, id.as_str(), "ok").await?;
    if disabled {
        for sb in st.sandboxes.running_of(id) {
            st.sandboxes
                .destroy(id, &sb, SandboxState::Stopped, "tenant disabled", ACTOR)
                .await;
        }
    }
    get(st, id).await
}

/// Deletes a tenant, its records and every object it stored; with running
/// sandboxes only when `force` (they are stopped first). Returns how many
/// objects were removed.
pub async fn delete(st: &AppState, id: &TenantId, force: bool) -> Result<u64> {
    get(st, id).await?;
    let running = st.sandboxes.running_of(id);
    if !running.is_empty() && !force {
        return Err(Error::conflict(format!(
            "the tenant has {} running sandbox(es); stop them or delete with ?force=true",
            running.len()
        )));
    }
    for sb in running {
        st.sandboxes
            .destroy(id, &sb, SandboxState::Stopped, "tenant deleted", ACTOR)
            .await;
    }
    let volumes = st.meta.list_volumes(id).await?;
    // Rows first: once they are gone no request can reach the objects.
    st.meta.delete_tenant(id).await?;
    let removed = st.tenant_store(id.clone()).objects().delete_all().await?;
    // Its sandboxes are gone, so none holds a volume: their bytes go now
    // (what fails here, the next start's sweep removes).
    for v in volumes {
        if let Err(e) = st.volumes.remove_orphan(v.id.as_str()) {
            tracing::error!(volume = %v.id, "removing a deleted tenant's volume: {e}");
        }
    }
    // The checkpoints of its memory-paused sandboxes (what fails here,
    // the next start's sweep removes: their records are gone).
    let checkpoints = super::pause_memory::tenant_dir(st, id);
    if let Err(e) = std::fs::remove_dir_all(&checkpoints) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::error!(tenant = %id, "removing a deleted tenant's checkpoints: {e}");
        }
    }
    let outcome = format!("ok ({removed} objects removed)");
    record(st, id, Action::TenantDelete, id.as_str(), &outcome).await?;
    Ok(removed)
}

/// A new API key for the tenant, and its secret (shown once, only its hash
/// kept).
pub async fn create_key(st: &AppState, id: &TenantId, name: &str) -> Result<(ApiKey, String)> {
    get(st, id).await?;
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "key names are up to 128 printable characters",
        ));
    }
    let secret = new_secret();
    let key = st.meta.create_key(id, name, &hash_hex(&secret)).await?;
    record(st, id, Action::KeyCreate, key.id.as_str(), "ok").await?;
    Ok((key, secret))
}

pub async fn list_keys(st: &AppState, id: &TenantId) -> Result<Vec<ApiKey>> {
    get(st, id).await?;
    Ok(st.meta.list_keys(id).await?)
}

/// Revokes one of the tenant's keys (another tenant's is not found).
pub async fn revoke_key(st: &AppState, id: &TenantId, key_id: &str) -> Result<()> {
    let key = KeyId::parse(key_id).ok_or_else(|| Error::not_found("key"))?;
    if !st.meta.revoke_key(id, &key).await? {
        return Err(Error::not_found("key"));
    }
    record(st, id, Action::KeyRevoke, key.as_str(), "ok").await
}

//! A tenant's secrets: create (or replace), list names, delete. A value is
//! accepted once, sealed with the server's key, and never shown again; the
//! audit records the name, never the value.

use crate::auth::Caller;
use crate::secrets::{self, SecretError, Vault};
use crate::service::audit::{self, Action};
use crate::service::{Error, Result};
use crate::state::AppState;
use warden_store::{now_ms, SecretMeta, SecretRecord};

/// The server's vault, or `secrets_disabled` when it has no key.
fn vault(st: &AppState) -> Result<&Vault> {
    Ok(st.vault.as_ref().ok_or(SecretError::Disabled)?)
}

/// Whether the server keeps secrets at all (every secret call says so
/// first, before it reads its input).
pub fn enabled(st: &AppState) -> Result<()> {
    vault(st).map(drop)
}

/// Seals and stores `value` as the caller's secret `name` (replacing one of
/// that name only when `replace`), and audits the attempt whatever its
/// outcome.
pub async fn create(
    st: &AppState,
    caller: &Caller,
    name: &str,
    value: &str,
    replace: bool,
) -> Result<SecretMeta> {
    let vault = vault(st)?;
    let result = async {
        secrets::check_name(name)?;
        secrets::check_value(value)?;
        let tenant = caller.store.tenant_id();
        let (nonce, ciphertext) = vault.seal(tenant, name, value.as_bytes());
        let now = now_ms();
        let record = SecretRecord {
            tenant_id: tenant.clone(),
            name: name.to_string(),
            nonce,
            ciphertext,
            created_at: now,
            updated_at: now,
        };
        Ok::<_, Error>(caller.store.put_secret(&record, replace).await?)
    }
    .await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    let action = if replace {
        Action::SecretReplace
    } else {
        Action::SecretCreate
    };
    // A refused name is not recorded as given: it could be a value pasted
    // into the wrong field.
    let target = if secrets::check_name(name).is_ok() {
        name
    } else {
        "(invalid name)"
    };
    audit::by_caller(st, caller, action, target, outcome).await?;
    result
}

/// The caller's secrets, names and times only.
pub async fn list(st: &AppState, caller: &Caller) -> Result<Vec<SecretMeta>> {
    enabled(st)?;
    Ok(caller.store.list_secrets().await?)
}

/// Deletes the caller's secret `name` (another tenant's is not found).
pub async fn delete(st: &AppState, caller: &Caller, name: &str) -> Result<()> {
    enabled(st)?;
    let deleted = secrets::check_name(name).is_ok() && caller.store.delete_secret(name).await?;
    if !deleted {
        return Err(Error::not_found("secret"));
    }
    audit::by_caller(st, caller, Action::SecretDelete, name, "ok").await?;
    Ok(())
}

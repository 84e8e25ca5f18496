//! Settings, tenants and API keys.

use super::{conflict, limit_plus_one, page, BEGIN_WRITE};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

pub(super) async fn get_setting(pool: &SqlitePool, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?,
    )
}

pub(super) async fn set_setting(pool: &SqlitePool, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

const TENANT_COLS: &str = "id, name, disabled, created_at, quotas";

fn tenant_from_row(row: &SqliteRow) -> Result<Tenant> {
    let quotas: String = row.try_get("quotas")?;
    let id: String = row.try_get("id")?;
    let quotas = serde_json::from_str(&quotas)
        .map_err(|e| StoreError::Corrupt(format!("quotas of tenant {id}: {e}")))?;
    Ok(Tenant {
        id: TenantId::from_stored(id),
        name: row.try_get("name")?,
        disabled: row.try_get("disabled")?,
        created_at: row.try_get("created_at")?,
        quotas,
    })
}

fn quotas_json(quotas: &Quotas) -> Result<String> {
    serde_json::to_string(quotas).map_err(|e| StoreError::Corrupt(format!("quotas: {e}")))
}

pub(super) async fn create(pool: &SqlitePool, name: &str, quotas: Quotas) -> Result<Tenant> {
    let tenant = Tenant {
        id: TenantId::generate(),
        name: name.to_owned(),
        disabled: false,
        created_at: now_ms(),
        quotas,
    };
    sqlx::query(
        "INSERT INTO tenants (id, name, disabled, created_at, quotas) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(tenant.id.as_str())
    .bind(&tenant.name)
    .bind(tenant.disabled)
    .bind(tenant.created_at)
    .bind(quotas_json(&tenant.quotas)?)
    .execute(pool)
    .await
    .map_err(|e| conflict(e, || format!("tenant {}", tenant.id)))?;
    Ok(tenant)
}

pub(super) async fn get(pool: &SqlitePool, id: &TenantId) -> Result<Option<Tenant>> {
    sqlx::query(&format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(tenant_from_row)
        .transpose()
}

pub(super) async fn list(
    pool: &SqlitePool,
    after: Option<&str>,
    limit: u32,
) -> Result<Page<Tenant>> {
    // The cursor is the last id seen; its row gives the position to go on
    // from. An unknown cursor yields an empty page.
    let rows = sqlx::query(&format!(
        "SELECT {TENANT_COLS} FROM tenants
         WHERE ?1 IS NULL
            OR (created_at, id) > (SELECT created_at, id FROM tenants WHERE id = ?1)
         ORDER BY created_at, id
         LIMIT ?2"
    ))
    .bind(after)
    .bind(limit_plus_one(limit))
    .fetch_all(pool)
    .await?;
    let items = rows
        .iter()
        .map(tenant_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |t| t.id.as_str()))
}

pub(super) async fn set_disabled(pool: &SqlitePool, id: &TenantId, disabled: bool) -> Result<bool> {
    let r = sqlx::query("UPDATE tenants SET disabled = ? WHERE id = ?")
        .bind(disabled)
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn set_quotas(pool: &SqlitePool, id: &TenantId, quotas: Quotas) -> Result<bool> {
    let r = sqlx::query("UPDATE tenants SET quotas = ? WHERE id = ?")
        .bind(quotas_json(&quotas)?)
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn delete(pool: &SqlitePool, id: &TenantId) -> Result<bool> {
    // One transaction, so a failure leaves the tenant whole rather than
    // half deleted. The audit chain is deliberately kept. Children before
    // parents, for the foreign keys: outputs and deliveries point at
    // reviews, everything at the tenant.
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    for table in [
        "review_outputs",
        "webhook_deliveries",
        "reviews",
        "tenant_secrets",
        "command_policies",
        "secrets",
        "api_keys",
        "files",
        "sandboxes",
        "review_turns",
        "storage_reservations",
        "volumes",
        "schedules",
        "snapshot_refs",
        "snapshot_blobs",
        "snapshots",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = ?"))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let r = sqlx::query("DELETE FROM tenants WHERE id = ?")
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

const KEY_COLS: &str = "id, tenant_id, name, created_at, revoked_at";

fn key_from_row(row: &SqliteRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: KeyId::from_stored(row.try_get("id")?),
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

pub(super) async fn create_key(
    pool: &SqlitePool,
    tenant: &TenantId,
    name: &str,
    secret_hash: &str,
) -> Result<ApiKey> {
    let key = ApiKey {
        id: KeyId::generate(),
        tenant_id: tenant.clone(),
        name: name.to_owned(),
        created_at: now_ms(),
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(key.id.as_str())
    .bind(tenant.as_str())
    .bind(&key.name)
    .bind(secret_hash)
    .bind(key.created_at)
    .execute(pool)
    .await
    .map_err(|e| conflict(e, || format!("key {}", key.id)))?;
    Ok(key)
}

pub(super) async fn list_keys(pool: &SqlitePool, tenant: &TenantId) -> Result<Vec<ApiKey>> {
    let rows = sqlx::query(&format!(
        "SELECT {KEY_COLS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id"
    ))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(key_from_row).collect()
}

pub(super) async fn revoke_key(pool: &SqlitePool, tenant: &TenantId, key: &KeyId) -> Result<bool> {
    // Revoking twice succeeds and keeps the first revocation time.
    let r = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
         WHERE tenant_id = ? AND id = ?",
    )
    .bind(now_ms())
    .bind(tenant.as_str())
    .bind(key.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn find_key(pool: &SqlitePool, key: &KeyId) -> Result<Option<(ApiKey, String)>> {
    // Authentication: the tenant is not known yet, the key names it. Revoked
    // keys are returned too; the caller checks `revoked_at`.
    let row = sqlx::query(&format!(
        "SELECT {KEY_COLS}, secret_hash FROM api_keys WHERE id = ?"
    ))
    .bind(key.as_str())
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((key_from_row(&row)?, row.try_get("secret_hash")?)))
        .transpose()
}

//! Tenant secrets: names, nonces and ciphertexts (never a plaintext; the
//! server encrypts before it calls in here).

use super::conflict;
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

fn meta_from_row(row: &SqliteRow) -> Result<SecretMeta> {
    Ok(SecretMeta {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) async fn put(pool: &SqlitePool, s: &SecretRecord, replace: bool) -> Result<SecretMeta> {
    // One statement either way, so two concurrent creates of one name
    // cannot both succeed. A replace keeps the first creation time.
    let sql = if replace {
        "INSERT INTO secrets (tenant_id, name, nonce, ciphertext, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (tenant_id, name) DO UPDATE
            SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at
         RETURNING name, created_at, updated_at"
    } else {
        "INSERT INTO secrets (tenant_id, name, nonce, ciphertext, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         RETURNING name, created_at, updated_at"
    };
    let row = sqlx::query(sql)
        .bind(s.tenant_id.as_str())
        .bind(&s.name)
        .bind(&s.nonce)
        .bind(&s.ciphertext)
        .bind(s.updated_at)
        .fetch_one(pool)
        .await
        .map_err(|e| conflict(e, || format!("secret {}", s.name)))?;
    meta_from_row(&row)
}

pub(super) async fn list(pool: &SqlitePool, tenant: &TenantId) -> Result<Vec<SecretMeta>> {
    let rows = sqlx::query(
        "SELECT name, created_at, updated_at FROM secrets WHERE tenant_id = ? ORDER BY name",
    )
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(meta_from_row).collect()
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<SecretRecord>> {
    let row = sqlx::query(
        "SELECT name, nonce, ciphertext, created_at, updated_at FROM secrets
         WHERE tenant_id = ? AND name = ?",
    )
    .bind(tenant.as_str())
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(SecretRecord {
            tenant_id: tenant.clone(),
            name: r.try_get("name")?,
            nonce: r.try_get("nonce")?,
            ciphertext: r.try_get("ciphertext")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    })
    .transpose()
}

pub(super) async fn delete(pool: &SqlitePool, tenant: &TenantId, name: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM secrets WHERE tenant_id = ? AND name = ?")
        .bind(tenant.as_str())
        .bind(name)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

//! Storage reservations: space an upload holds against its tenant's
//! storage quota while it streams in.
//!
//! Checking the quota once before an upload and recording the file after
//! it lets parallel uploads each see the same free space (eight 8 MiB
//! uploads stored 64 MiB against a 10 MiB quota). Here every byte is
//! reserved before it is written: the check and the reservation are one
//! `BEGIN IMMEDIATE` transaction, which serializes them with every other
//! reservation and file insert.
//!
//! Also which objects rows point at, for the start-up sweep.

use super::{to_i64, to_u64, BEGIN_WRITE};
use crate::*;
use sqlx::{Sqlite, SqlitePool};

/// Bytes of the tenant's files, job outputs, stored logs, volumes,
/// snapshots' blobs and manifests, and what snapshots hold outside the
/// blob store (memory pauses' checkpoints): its storage in use (`?1` is
/// the tenant).
const IN_USE: &str = "(SELECT COALESCE(SUM(size), 0) FROM files WHERE tenant_id = ?1)
      + (SELECT COALESCE(SUM(size), 0) FROM review_outputs WHERE tenant_id = ?1)
      + (SELECT COALESCE(SUM(log_bytes), 0) FROM reviews WHERE tenant_id = ?1)
      + (SELECT COALESCE(SUM(size_bytes), 0) FROM volumes WHERE tenant_id = ?1)
      + (SELECT COALESCE(SUM(size_bytes), 0) FROM snapshot_blobs WHERE tenant_id = ?1)
      + (SELECT COALESCE(SUM(manifest_bytes + held_bytes), 0) FROM snapshots
         WHERE tenant_id = ?1)";

/// The tenant's storage in use (not counting uploads' reservations): what
/// it is shown as using.
pub(super) async fn in_use(pool: &SqlitePool, tenant: &TenantId) -> Result<u64> {
    let total: i64 = sqlx::query_scalar(&format!("SELECT {IN_USE}"))
        .bind(tenant.as_str())
        .fetch_one(pool)
        .await?;
    to_u64(total, "storage in use")
}

/// The tenant's storage in use plus what its uploads have reserved, other
/// than the reservation `except`: what the quota is checked against.
pub(super) async fn used_except<'c, E>(conn: E, tenant: &TenantId, except: &str) -> Result<u64>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT {IN_USE}
              + (SELECT COALESCE(SUM(bytes), 0) FROM storage_reservations
                 WHERE tenant_id = ?1 AND id <> ?2)"
    ))
    .bind(tenant.as_str())
    .bind(except)
    .fetch_one(conn)
    .await?;
    to_u64(total, "storage in use")
}

pub(super) async fn reserve(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &str,
    bytes: u64,
) -> Result<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let quotas = quotas_of(&mut *tx, tenant).await?;
    let used = used_except(&mut *tx, tenant, id).await?;
    if used.saturating_add(bytes) > quotas.max_storage_bytes {
        // Dropping `tx` rolls back (nothing was written).
        return Err(StoreError::StorageQuota {
            used,
            wanted: bytes,
            limit: quotas.max_storage_bytes,
        });
    }
    sqlx::query(
        "INSERT INTO storage_reservations (id, tenant_id, bytes, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes
         WHERE storage_reservations.tenant_id = excluded.tenant_id",
    )
    .bind(id)
    .bind(tenant.as_str())
    .bind(to_i64(bytes, "reservation")?)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The tenant's quotas, read within the caller's transaction.
pub(super) async fn quotas_of<'c, E>(conn: E, tenant: &TenantId) -> Result<Quotas>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let quotas: Option<String> = sqlx::query_scalar("SELECT quotas FROM tenants WHERE id = ?")
        .bind(tenant.as_str())
        .fetch_optional(conn)
        .await?;
    match quotas {
        Some(q) => serde_json::from_str(&q)
            .map_err(|e| StoreError::Corrupt(format!("quotas of tenant {tenant}: {e}"))),
        None => Err(StoreError::NotFound(format!("tenant {tenant}"))),
    }
}

pub(super) async fn release(pool: &SqlitePool, tenant: &TenantId, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM storage_reservations WHERE tenant_id = ? AND id = ?")
        .bind(tenant.as_str())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Reservations made before `before` (by a process that has died: called
/// at start-up with the time the sweep began). Returns how many.
pub(super) async fn clear_before(pool: &SqlitePool, before: Millis) -> Result<u64> {
    let r = sqlx::query("DELETE FROM storage_reservations WHERE created_at < ?")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}

pub(super) async fn object_referenced(
    pool: &SqlitePool,
    tenant: &TenantId,
    kind: ObjectKind,
    id: &str,
) -> Result<bool> {
    let sql = match kind {
        ObjectKind::Files => "SELECT EXISTS (SELECT 1 FROM files WHERE tenant_id = ? AND id = ?)",
        ObjectKind::Outputs => {
            "SELECT EXISTS (SELECT 1 FROM review_outputs WHERE tenant_id = ? AND object_id = ?)"
        }
        // A review's log is stored under the review's id, until its tenant
        // deletes the job's outputs.
        ObjectKind::Logs => {
            "SELECT EXISTS (SELECT 1 FROM reviews WHERE tenant_id = ? AND id = ?
                 AND outputs_deleted_at IS NULL)"
        }
        ObjectKind::Blobs => {
            "SELECT EXISTS (SELECT 1 FROM snapshot_blobs WHERE tenant_id = ? AND object_key = ?)"
        }
        ObjectKind::Snapshots => {
            "SELECT EXISTS (SELECT 1 FROM snapshots WHERE tenant_id = ? AND id = ?)"
        }
    };
    Ok(sqlx::query_scalar(sql)
        .bind(tenant.as_str())
        .bind(id)
        .fetch_one(pool)
        .await?)
}

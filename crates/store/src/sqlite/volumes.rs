//! Volumes: a tenant's named persistent file systems. Creating one checks
//! its tenant's volume count and storage quota in the same write
//! transaction as the insert (see `reservations.rs` for the storage sum).

use super::{conflict, reservations, to_i64, to_u64, BEGIN_WRITE};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const COLUMNS: &str = "id, tenant_id, name, size_bytes, created_at";

fn from_row(row: &SqliteRow) -> Result<VolumeRecord> {
    Ok(VolumeRecord {
        id: VolumeId::from_stored(row.try_get("id")?),
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        size_bytes: to_u64(row.try_get("size_bytes")?, "volume size")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) async fn create(pool: &SqlitePool, v: &VolumeRecord) -> Result<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    // A taken name is the answer whatever the quotas say.
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM volumes WHERE tenant_id = ? AND name = ?)",
    )
    .bind(v.tenant_id.as_str())
    .bind(&v.name)
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(StoreError::Conflict(format!("volume {}", v.name)));
    }
    let quotas = reservations::quotas_of(&mut *tx, &v.tenant_id).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM volumes WHERE tenant_id = ?")
        .bind(v.tenant_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if to_u64(count, "volume count")? >= u64::from(quotas.max_volumes) {
        return Err(StoreError::CountQuota(format!(
            "max_volumes: the tenant keeps {count} volumes, its limit is {}",
            quotas.max_volumes
        )));
    }
    let used = reservations::used_except(&mut *tx, &v.tenant_id, "").await?;
    if used.saturating_add(v.size_bytes) > quotas.max_storage_bytes {
        return Err(StoreError::StorageQuota {
            used,
            wanted: v.size_bytes,
            limit: quotas.max_storage_bytes,
        });
    }
    sqlx::query(
        "INSERT INTO volumes (id, tenant_id, name, size_bytes, created_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(v.id.as_str())
    .bind(v.tenant_id.as_str())
    .bind(&v.name)
    .bind(to_i64(v.size_bytes, "volume size")?)
    .bind(v.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict(e, || format!("volume {}", v.name)))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &SqlitePool, tenant: &TenantId) -> Result<Vec<VolumeRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE tenant_id = ? ORDER BY name"
    ))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &VolumeId,
) -> Result<Option<VolumeRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn get_by_name(
    pool: &SqlitePool,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<VolumeRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE tenant_id = ? AND name = ?"
    ))
    .bind(tenant.as_str())
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn delete(pool: &SqlitePool, tenant: &TenantId, id: &VolumeId) -> Result<bool> {
    let r = sqlx::query("DELETE FROM volumes WHERE tenant_id = ? AND id = ?")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn all(pool: &SqlitePool) -> Result<Vec<VolumeRecord>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM volumes ORDER BY id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

//! Snapshots and the blobs they hold.
//!
//! A blob is one file content of one tenant, found by its SHA-256 and
//! stored once under an object key chosen when its row is made. Which
//! snapshots hold it is `snapshot_refs`; a blob nothing holds is deleted
//! with the last snapshot that held it, its row in the same transaction
//! that checks nobody holds it. A snapshot being made that meets a blob
//! row gone a moment ago makes a new row under its own new key, so a late
//! object delete of the old key can never remove bytes a snapshot holds.

use super::{conflict, reservations, to_i64, to_u64, BEGIN_WRITE};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const COLUMNS: &str = "id, tenant_id, name, source_sandbox, state, purpose, spec, files, bytes, \
                       manifest_bytes, held_bytes, created_at";

fn from_row(row: &SqliteRow) -> Result<SnapshotRecord> {
    let spec: String = row.try_get("spec")?;
    let state: String = row.try_get("state")?;
    Ok(SnapshotRecord {
        id: SnapshotId::from_stored(row.try_get("id")?),
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        source_sandbox: SandboxId::from_stored(row.try_get("source_sandbox")?),
        ready: state == "ready",
        purpose: match row.try_get::<String, _>("purpose")?.as_str() {
            "user" => SnapshotPurpose::User,
            "pause" => SnapshotPurpose::Pause,
            "layer" => SnapshotPurpose::Layer,
            "fork" => SnapshotPurpose::Fork,
            "base" => SnapshotPurpose::Base,
            other => return Err(StoreError::Corrupt(format!("snapshot purpose {other:?}"))),
        },
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Corrupt(format!("snapshot spec: {e}")))?,
        files: to_u64(row.try_get("files")?, "snapshot files")?,
        bytes: to_u64(row.try_get("bytes")?, "snapshot bytes")?,
        manifest_bytes: to_u64(row.try_get("manifest_bytes")?, "manifest bytes")?,
        held_bytes: to_u64(row.try_get("held_bytes")?, "held bytes")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) async fn begin(pool: &SqlitePool, s: &SnapshotRecord) -> Result<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    if let Some(name) = &s.name {
        let taken: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM snapshots WHERE tenant_id = ? AND name = ?)",
        )
        .bind(s.tenant_id.as_str())
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if taken {
            return Err(StoreError::Conflict(format!("snapshot {name}")));
        }
    }
    let quotas = reservations::quotas_of(&mut *tx, &s.tenant_id).await?;
    // An image's layers are bounded by max_images (and their steps); a
    // fork's files live as long as the fork's create.
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM snapshots WHERE tenant_id = ? AND purpose IN ('user', 'pause')",
    )
    .bind(s.tenant_id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    if matches!(s.purpose, SnapshotPurpose::User | SnapshotPurpose::Pause)
        && to_u64(count, "snapshot count")? >= u64::from(quotas.max_snapshots)
    {
        return Err(StoreError::CountQuota(format!(
            "max_snapshots: the tenant keeps {count} snapshots, its limit is {}",
            quotas.max_snapshots
        )));
    }
    if s.held_bytes > 0 {
        // What it will hold outside the blob store is charged before it is
        // taken, in this transaction, as a blob's bytes are.
        let used = reservations::used_except(&mut *tx, &s.tenant_id, "").await?;
        if used.saturating_add(s.held_bytes) > quotas.max_storage_bytes {
            return Err(StoreError::StorageQuota {
                used,
                wanted: s.held_bytes,
                limit: quotas.max_storage_bytes,
            });
        }
    }
    let spec = serde_json::to_string(&s.spec)
        .map_err(|e| StoreError::Invalid(format!("snapshot spec: {e}")))?;
    sqlx::query(
        "INSERT INTO snapshots (id, tenant_id, name, source_sandbox, state, purpose, spec,
                                held_bytes, created_at)
         VALUES (?, ?, ?, ?, 'making', ?, ?, ?, ?)",
    )
    .bind(s.id.as_str())
    .bind(s.tenant_id.as_str())
    .bind(&s.name)
    .bind(s.source_sandbox.as_str())
    .bind(s.purpose.as_str())
    .bind(spec)
    .bind(to_i64(s.held_bytes, "held bytes")?)
    .bind(s.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict(e, || format!("snapshot {}", s.id)))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn hold_blob(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SnapshotId,
    digest: &str,
    key: &BlobKey,
    size: u64,
) -> Result<BlobHold> {
    let held = hold(pool, tenant, id, digest, Some((key, size))).await?;
    held.ok_or_else(|| StoreError::Corrupt(format!("blob {digest} neither known nor adopted")))
}

pub(super) async fn hold_known_blob(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SnapshotId,
    digest: &str,
) -> Result<Option<BlobKey>> {
    Ok(hold(pool, tenant, id, digest, None).await?.map(|h| h.key))
}

/// Makes snapshot `id` (being made) hold the tenant's blob of content
/// `digest`: the stored one if there is one, else (with `new`, if the
/// storage quota allows its size) the object under its key, adopted as
/// that blob; None if there is neither. One transaction.
async fn hold(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SnapshotId,
    digest: &str,
    new: Option<(&BlobKey, u64)>,
) -> Result<Option<BlobHold>> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    being_made(&mut tx, tenant, id).await?;
    let known: Option<String> = sqlx::query_scalar(
        "SELECT object_key FROM snapshot_blobs WHERE tenant_id = ? AND digest = ?",
    )
    .bind(tenant.as_str())
    .bind(digest)
    .fetch_optional(&mut *tx)
    .await?;
    let hold = match (known, new) {
        (Some(k), _) => BlobHold {
            key: BlobKey::from_stored(k),
            adopted: false,
        },
        (None, None) => return Ok(None),
        (None, Some((key, size))) => {
            let quotas = reservations::quotas_of(&mut *tx, tenant).await?;
            let used = reservations::used_except(&mut *tx, tenant, "").await?;
            if used.saturating_add(size) > quotas.max_storage_bytes {
                return Err(StoreError::StorageQuota {
                    used,
                    wanted: size,
                    limit: quotas.max_storage_bytes,
                });
            }
            sqlx::query(
                "INSERT INTO snapshot_blobs (tenant_id, digest, object_key, size_bytes)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(tenant.as_str())
            .bind(digest)
            .bind(key.as_str())
            .bind(to_i64(size, "blob size")?)
            .execute(&mut *tx)
            .await?;
            BlobHold {
                key: key.clone(),
                adopted: true,
            }
        }
    };
    sqlx::query(
        "INSERT OR IGNORE INTO snapshot_refs (snapshot_id, tenant_id, digest) VALUES (?, ?, ?)",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .bind(digest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(hold))
}

/// Refuses (`NotFound`) unless snapshot `id` is being made.
async fn being_made(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    tenant: &TenantId,
    id: &SnapshotId,
) -> Result<()> {
    let making: Option<String> =
        sqlx::query_scalar("SELECT state FROM snapshots WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    if making.as_deref() != Some("making") {
        return Err(StoreError::NotFound(format!("snapshot {id} being made")));
    }
    Ok(())
}

pub(super) async fn rebase(pool: &SqlitePool, tenant: &TenantId, id: &SnapshotId) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE snapshots SET purpose = 'base'
         WHERE tenant_id = ? AND id = ? AND purpose = 'pause' AND state = 'ready'",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn finish(pool: &SqlitePool, s: &SnapshotRecord) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE snapshots SET state = 'ready', files = ?, bytes = ?, manifest_bytes = ?,
                              held_bytes = ?
         WHERE tenant_id = ? AND id = ? AND state = 'making'",
    )
    .bind(to_i64(s.files, "files")?)
    .bind(to_i64(s.bytes, "bytes")?)
    .bind(to_i64(s.manifest_bytes, "manifest bytes")?)
    .bind(to_i64(s.held_bytes, "held bytes")?)
    .bind(s.tenant_id.as_str())
    .bind(s.id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn list(pool: &SqlitePool, tenant: &TenantId) -> Result<Vec<SnapshotRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = ? AND purpose = 'user'
         ORDER BY created_at DESC, id"
    ))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    column: &str,
    value: &str,
) -> Result<Option<SnapshotRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE tenant_id = ? AND {column} = ? AND purpose = 'user'"
    ))
    .bind(tenant.as_str())
    .bind(value)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn pause_of(
    pool: &SqlitePool,
    tenant: &TenantId,
    sandbox: &SandboxId,
) -> Result<Option<SnapshotRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots
         WHERE tenant_id = ? AND source_sandbox = ? AND purpose = 'pause' AND state = 'ready'
         ORDER BY created_at DESC, id LIMIT 1"
    ))
    .bind(tenant.as_str())
    .bind(sandbox.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn delete(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SnapshotId,
) -> Result<Option<Vec<BlobKey>>> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let digests: Vec<String> = sqlx::query_scalar(
        "SELECT digest FROM snapshot_refs WHERE snapshot_id = ? AND tenant_id = ?",
    )
    .bind(id.as_str())
    .bind(tenant.as_str())
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM snapshot_refs WHERE snapshot_id = ? AND tenant_id = ?")
        .bind(id.as_str())
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?;
    let r = sqlx::query("DELETE FROM snapshots WHERE tenant_id = ? AND id = ?")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let mut freed = Vec::new();
    for digest in digests {
        let key: Option<String> = sqlx::query_scalar(
            "DELETE FROM snapshot_blobs WHERE tenant_id = ?1 AND digest = ?2
               AND NOT EXISTS (SELECT 1 FROM snapshot_refs WHERE tenant_id = ?1 AND digest = ?2)
             RETURNING object_key",
        )
        .bind(tenant.as_str())
        .bind(&digest)
        .fetch_optional(&mut *tx)
        .await?;
        freed.extend(key.map(BlobKey::from_stored));
    }
    tx.commit().await?;
    Ok(Some(freed))
}

pub(super) async fn unfinished(pool: &SqlitePool) -> Result<Vec<SnapshotRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE state = 'making' OR purpose IN ('fork', 'base')
         ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

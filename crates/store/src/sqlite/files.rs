//! File metadata and upload nonces.

use super::{conflict, limit_plus_one, page, to_i64, to_u64, BEGIN_WRITE};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const FILE_COLS: &str = "id, tenant_id, name, size, sha256, content_type, created_at, scan";

fn file_from_row(row: &SqliteRow) -> Result<FileMeta> {
    Ok(FileMeta {
        id: FileId::from_stored(row.try_get("id")?),
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        size: to_u64(row.try_get("size")?, "file size")?,
        sha256: row.try_get("sha256")?,
        content_type: row.try_get("content_type")?,
        created_at: row.try_get("created_at")?,
        scan: row.try_get("scan")?,
    })
}

pub(super) async fn insert(pool: &SqlitePool, f: &FileMeta) -> Result<()> {
    // The file's row takes over from the reservation its upload held (same
    // id), in one transaction: the bytes are never counted twice or not at
    // all.
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    sqlx::query("DELETE FROM storage_reservations WHERE tenant_id = ? AND id = ?")
        .bind(f.tenant_id.as_str())
        .bind(f.id.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO files ({FILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(f.id.as_str())
    .bind(f.tenant_id.as_str())
    .bind(&f.name)
    .bind(to_i64(f.size, "file size")?)
    .bind(&f.sha256)
    .bind(&f.content_type)
    .bind(f.created_at)
    .bind(&f.scan)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict(e, || format!("file {}", f.id)))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &FileId,
) -> Result<Option<FileMeta>> {
    sqlx::query(&format!(
        "SELECT {FILE_COLS} FROM files WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(file_from_row)
    .transpose()
}

pub(super) async fn list(
    pool: &SqlitePool,
    tenant: &TenantId,
    after: Option<&str>,
    limit: u32,
) -> Result<Page<FileMeta>> {
    // The cursor row is looked up within the tenant too: another tenant's id
    // as a cursor finds nothing (an empty page), and reveals nothing.
    let rows = sqlx::query(&format!(
        "SELECT {FILE_COLS} FROM files
         WHERE tenant_id = ?1
           AND (?2 IS NULL
                OR (created_at, id) >
                   (SELECT created_at, id FROM files WHERE tenant_id = ?1 AND id = ?2))
         ORDER BY created_at, id
         LIMIT ?3"
    ))
    .bind(tenant.as_str())
    .bind(after)
    .bind(limit_plus_one(limit))
    .fetch_all(pool)
    .await?;
    let items = rows.iter().map(file_from_row).collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |f| f.id.as_str()))
}

pub(super) async fn delete(pool: &SqlitePool, tenant: &TenantId, id: &FileId) -> Result<bool> {
    let r = sqlx::query("DELETE FROM files WHERE tenant_id = ? AND id = ?")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn use_upload_nonce(
    pool: &SqlitePool,
    nonce: &str,
    expires_at: Millis,
) -> Result<bool> {
    // Opportunistic cleanup: a nonce is only worth keeping while its URL is
    // valid (after that the signature check refuses the URL anyway).
    sqlx::query("DELETE FROM upload_nonces WHERE expires_at < ?")
        .bind(now_ms())
        .execute(pool)
        .await?;
    // The primary key makes "check and mark" one atomic statement: of two
    // concurrent uploads with the same URL, exactly one inserts.
    let r = sqlx::query(
        "INSERT INTO upload_nonces (nonce, expires_at) VALUES (?, ?)
         ON CONFLICT (nonce) DO NOTHING",
    )
    .bind(nonce)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

//! The files a review job left in `/output` (rows; the bytes are objects).

use super::{insert_error, to_i64, to_u64, BEGIN_WRITE};
use crate::jobs::*;
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const OUTPUT_COLS: &str = "review_id, tenant_id, path, object_id, size, sha256";

fn output_from_row(row: &SqliteRow) -> Result<OutputRecord> {
    Ok(OutputRecord {
        review_id: ReviewId::from_stored(row.try_get("review_id")?),
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        path: row.try_get("path")?,
        object_id: OutputId::from_stored(row.try_get("object_id")?),
        size: to_u64(row.try_get("size")?, "output size")?,
        sha256: row.try_get("sha256")?,
    })
}

pub(super) async fn insert(pool: &SqlitePool, o: &OutputRecord) -> Result<()> {
    // The (tenant_id, review_id) foreign key refuses an output for a job
    // that does not exist or belongs to another tenant.
    sqlx::query(&format!(
        "INSERT INTO review_outputs ({OUTPUT_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
    ))
    .bind(o.review_id.as_str())
    .bind(o.tenant_id.as_str())
    .bind(&o.path)
    .bind(o.object_id.as_str())
    .bind(to_i64(o.size, "output size")?)
    .bind(&o.sha256)
    .execute(pool)
    .await
    .map_err(|e| {
        insert_error(
            e,
            || format!("output {:?} of review {}", o.path, o.review_id),
            || format!("review {}", o.review_id),
        )
    })?;
    Ok(())
}

pub(super) async fn list(
    pool: &SqlitePool,
    tenant: &TenantId,
    review: &ReviewId,
) -> Result<Vec<OutputRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTPUT_COLS} FROM review_outputs
         WHERE tenant_id = ? AND review_id = ? ORDER BY path"
    ))
    .bind(tenant.as_str())
    .bind(review.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(output_from_row).collect()
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    review: &ReviewId,
    path: &str,
) -> Result<Option<OutputRecord>> {
    sqlx::query(&format!(
        "SELECT {OUTPUT_COLS} FROM review_outputs
         WHERE tenant_id = ? AND review_id = ? AND path = ?"
    ))
    .bind(tenant.as_str())
    .bind(review.as_str())
    .bind(path)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(output_from_row)
    .transpose()
}

pub(super) async fn clear(
    pool: &SqlitePool,
    tenant: &TenantId,
    review: &ReviewId,
) -> Result<Vec<OutputId>> {
    // One statement: the ids returned are exactly the rows removed, so a
    // concurrent clear cannot make the caller delete an object twice or miss
    // one.
    let mut ids: Vec<String> = sqlx::query_scalar(
        "DELETE FROM review_outputs WHERE tenant_id = ? AND review_id = ? RETURNING object_id",
    )
    .bind(tenant.as_str())
    .bind(review.as_str())
    .fetch_all(pool)
    .await?;
    // RETURNING gives no order guarantee; callers (and logs) get a stable one.
    ids.sort();
    Ok(ids.into_iter().map(OutputId::from_stored).collect())
}

pub(super) async fn delete_all(
    pool: &SqlitePool,
    tenant: &TenantId,
    review: &ReviewId,
    now: Millis,
) -> Result<OutputsDeleted> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT status, log_bytes FROM reviews WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(review.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some((status, log_bytes)) = row else {
        return Ok(OutputsDeleted::NoJob);
    };
    let status = ReviewStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("status of review {review}: {status}")))?;
    if !status.is_terminal() {
        return Ok(OutputsDeleted::NotEnded(status));
    }
    let removed: Vec<(String, i64)> = sqlx::query_as(
        "DELETE FROM review_outputs WHERE tenant_id = ? AND review_id = ? RETURNING object_id, size",
    )
    .bind(tenant.as_str())
    .bind(review.as_str())
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE reviews SET log_bytes = 0, outputs_deleted_at = COALESCE(outputs_deleted_at, ?)
         WHERE tenant_id = ? AND id = ?",
    )
    .bind(now)
    .bind(tenant.as_str())
    .bind(review.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut bytes = to_u64(log_bytes, "log bytes")?;
    let mut outputs = Vec::with_capacity(removed.len());
    for (id, size) in removed {
        bytes += to_u64(size, "output size")?;
        outputs.push(OutputId::from_stored(id));
    }
    outputs.sort();
    Ok(OutputsDeleted::Deleted { outputs, bytes })
}

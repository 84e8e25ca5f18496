//! The review queue, tenant side: submission, listings, cancel, counts.
//! The worker side (the lease protocol) is in `leases`.

use super::{
    insert_error, json, limit_plus_one, page, to_u32, to_u64, usage_from_row, BEGIN_WRITE,
};
use crate::jobs::*;
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

pub(super) const REVIEW_COLS: &str =
    "id, tenant_id, status, spec, files, idempotency_key, webhook_url, \
     created_at, started_at, finished_at, attempts, max_attempts, exit_code, signal, error, \
     cpu_seconds, peak_memory_bytes, wall_seconds, cancel_requested, lease_owner, \
     lease_expires, not_before, log_bytes, log_truncated, outputs_truncated, \
     outputs_deleted_at";

pub(super) fn review_from_row(row: &SqliteRow) -> Result<ReviewRecord> {
    let id: String = row.try_get("id")?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("{what} of review {id}: {e}"))
    };
    let status: String = row.try_get("status")?;
    let status = ReviewStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
    let spec: String = row.try_get("spec")?;
    let spec = serde_json::from_str(&spec).map_err(|e| corrupt("spec", &e))?;
    let files: String = row.try_get("files")?;
    let files = serde_json::from_str(&files).map_err(|e| corrupt("files", &e))?;
    let usage = usage_from_row(row, &format!("review {id}"))?;
    Ok(ReviewRecord {
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        status,
        spec,
        files,
        idempotency_key: row.try_get("idempotency_key")?,
        webhook_url: row.try_get("webhook_url")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        attempts: to_u32(row.try_get("attempts")?, "attempts")?,
        max_attempts: to_u32(row.try_get("max_attempts")?, "max attempts")?,
        exit_code: row.try_get("exit_code")?,
        signal: row.try_get("signal")?,
        error: row.try_get("error")?,
        usage,
        cancel_requested: row.try_get("cancel_requested")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires: row.try_get("lease_expires")?,
        not_before: row.try_get("not_before")?,
        storage: JobStorage {
            log_bytes: to_u64(row.try_get("log_bytes")?, "log bytes")?,
            log_truncated: row.try_get("log_truncated")?,
            outputs_truncated: row.try_get("outputs_truncated")?,
        },
        outputs_deleted_at: row.try_get("outputs_deleted_at")?,
        id: ReviewId::from_stored(id),
    })
}

fn rows_to_reviews(rows: &[SqliteRow]) -> Result<Vec<ReviewRecord>> {
    rows.iter().map(review_from_row).collect()
}

pub(super) async fn submit(pool: &SqlitePool, r: &ReviewRecord) -> Result<(ReviewRecord, bool)> {
    // Only the description is taken from `r`; the queue state is that of a
    // fresh job whatever the caller filled in, so a submission can never
    // smuggle in a lease, attempts or a terminal state.
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let inserted = sqlx::query(
        "INSERT INTO reviews (id, tenant_id, status, spec, files, idempotency_key, webhook_url,
                              created_at, attempts, max_attempts, cancel_requested, not_before)
         VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, 0, ?, 0, ?)
         ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(r.id.as_str())
    .bind(r.tenant_id.as_str())
    .bind(json(&r.spec, "spec")?)
    .bind(json(&r.files, "files")?)
    .bind(&r.idempotency_key)
    .bind(&r.webhook_url)
    .bind(r.created_at)
    .bind(i64::from(r.max_attempts))
    .bind(r.not_before)
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        insert_error(
            e,
            || format!("review {}", r.id),
            || format!("tenant {}", r.tenant_id),
        )
    })?
    .rows_affected()
        == 1;
    // Read back in the same transaction: either our row, or the one that
    // already holds the key (the DO NOTHING above only ever skips for that).
    let row = if inserted {
        sqlx::query(&format!(
            "SELECT {REVIEW_COLS} FROM reviews WHERE tenant_id = ? AND id = ?"
        ))
        .bind(r.tenant_id.as_str())
        .bind(r.id.as_str())
        .fetch_optional(&mut *tx)
        .await?
    } else {
        sqlx::query(&format!(
            "SELECT {REVIEW_COLS} FROM reviews WHERE tenant_id = ? AND idempotency_key = ?"
        ))
        .bind(r.tenant_id.as_str())
        .bind(&r.idempotency_key)
        .fetch_optional(&mut *tx)
        .await?
    };
    tx.commit().await?;
    let row = row
        .ok_or_else(|| StoreError::Corrupt(format!("review {} not readable after insert", r.id)))?;
    Ok((review_from_row(&row)?, inserted))
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &ReviewId,
) -> Result<Option<ReviewRecord>> {
    sqlx::query(&format!(
        "SELECT {REVIEW_COLS} FROM reviews WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(review_from_row)
    .transpose()
}

pub(super) async fn list(
    pool: &SqlitePool,
    tenant: &TenantId,
    filter: &ReviewFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Page<ReviewRecord>> {
    // Newest first, so the cursor bounds from above. The cursor row is looked
    // up within the tenant: another tenant's id finds nothing (empty page).
    let rows = sqlx::query(&format!(
        "SELECT {REVIEW_COLS} FROM reviews
         WHERE tenant_id = ?1
           AND (?2 IS NULL
                OR (created_at, id) <
                   (SELECT created_at, id FROM reviews WHERE tenant_id = ?1 AND id = ?2))
           AND (?3 IS NULL OR status = ?3)
         ORDER BY created_at DESC, id DESC
         LIMIT ?4"
    ))
    .bind(tenant.as_str())
    .bind(after)
    .bind(filter.status.map(ReviewStatus::as_str))
    .bind(limit_plus_one(limit))
    .fetch_all(pool)
    .await?;
    Ok(page(rows_to_reviews(&rows)?, limit, |r| r.id.as_str()))
}

pub(super) async fn cancel(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &ReviewId,
) -> Result<Option<ReviewRecord>> {
    // Like the lease protocol, one UPDATE that states what it expects. It
    // decides on the status it sees (the right-hand sides all
    // read the row as it was), so a concurrent claim either happens before
    // (cancel_requested is set) or after (the job is already cancelled and
    // not claimable). A terminal job is matched and returned unchanged.
    let row = sqlx::query(&format!(
        "UPDATE reviews
         SET status = CASE status WHEN 'pending' THEN 'cancelled' ELSE status END,
             finished_at = CASE status WHEN 'pending' THEN ?1 ELSE finished_at END,
             error = CASE status WHEN 'pending' THEN 'cancelled before it started'
                                 ELSE error END,
             cancel_requested = CASE status WHEN 'running' THEN 1 ELSE cancel_requested END
         WHERE tenant_id = ?2 AND id = ?3
         RETURNING {REVIEW_COLS}"
    ))
    .bind(now_ms())
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(review_from_row).transpose()
}

pub(super) async fn cancel_requested(pool: &SqlitePool, id: &ReviewId) -> Result<bool> {
    // Worker side: the worker knows the job by id only. A job that is gone
    // (its tenant deleted) reads as not cancelled; the worker's next finish
    // or renew tells it the job is no longer its own.
    let flag: Option<bool> =
        sqlx::query_scalar("SELECT cancel_requested FROM reviews WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(flag.unwrap_or(false))
}

pub(super) async fn counts(pool: &SqlitePool, tenant: &TenantId) -> Result<(u32, u32)> {
    let (pending, running): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'running'), 0)
         FROM reviews WHERE tenant_id = ? AND status IN ('pending', 'running')",
    )
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await?;
    Ok((
        to_u32(pending, "pending reviews")?,
        to_u32(running, "running reviews")?,
    ))
}

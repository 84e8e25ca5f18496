//! The lease protocol, worker side: claim, renew, finish, requeue.
//!
//! Every state change is one UPDATE whose WHERE states the state it expects
//! (e.g. `status = 'running' AND lease_owner = ?`), so racing callers never
//! both succeed: a worker whose lease was taken over finds its finish or
//! renew refused instead of overwriting the new owner's job.

use super::jobs::{review_from_row, REVIEW_COLS};
use super::{to_i64, usage_cols, BEGIN_WRITE};
use crate::jobs::*;
use crate::*;
use sqlx::SqlitePool;

pub(super) async fn claim(
    pool: &SqlitePool,
    owner: &str,
    now: Millis,
    lease_until: Millis,
    per_tenant: u32,
) -> Result<Option<ReviewRecord>> {
    // The write lock is taken at BEGIN, so two claimers never see the same
    // candidate: the second one's transaction starts after the first commits.
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;

    // Abandoned jobs that have used up their attempts end here rather than
    // being handed to yet another node: a job that keeps killing the node
    // running it must not take the whole fleet down one node at a time.
    let gave_up: Vec<(String, String)> = sqlx::query_as(
        "UPDATE reviews
         SET status = 'failed', finished_at = ?1,
             error = 'gave up after ' || attempts || ' attempts (the node running it stopped)',
             lease_owner = NULL, lease_expires = NULL
         WHERE status = 'running' AND lease_expires < ?1 AND attempts >= max_attempts
         RETURNING tenant_id, id",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, id) in &gave_up {
        tracing::warn!(%tenant, review = %id, "review abandoned too often; marked failed");
    }

    // `live` counts each tenant's jobs under an unexpired lease. Tenants at
    // `per_tenant` are skipped; the others go fewest-live first, so a tenant
    // with a long backlog cannot starve one that submitted a single job.
    // Among tenants with as many live jobs, the one handed a job least
    // recently (`review_turns`; never is least recent) goes first: with the
    // oldest backlog first instead, a slot freed by a busy tenant went back
    // to that tenant (now one job short) ahead of a newly active one, whose
    // job waited for every older backlog.
    // A running job whose lease expired is claimable like a pending one (its
    // node died); `not_before` was already passed when it was first claimed.
    let row = sqlx::query(&format!(
        "WITH live AS (
             SELECT tenant_id, COUNT(*) AS n FROM reviews
             WHERE status = 'running' AND lease_expires >= ?1
             GROUP BY tenant_id)
         UPDATE reviews
         SET status = 'running', lease_owner = ?2, lease_expires = ?3,
             attempts = attempts + 1, started_at = COALESCE(started_at, ?1)
         WHERE id = (
             SELECT r.id FROM reviews AS r
             LEFT JOIN live AS l ON l.tenant_id = r.tenant_id
             LEFT JOIN review_turns AS t ON t.tenant_id = r.tenant_id
             WHERE ((r.status = 'pending' AND r.not_before <= ?1)
                    OR (r.status = 'running' AND r.lease_expires < ?1))
               AND COALESCE(l.n, 0) < ?4
             ORDER BY COALESCE(l.n, 0), COALESCE(t.last_claim, 0), r.created_at, r.id
             LIMIT 1)
         RETURNING {REVIEW_COLS}"
    ))
    .bind(now)
    .bind(owner)
    .bind(lease_until)
    .bind(i64::from(per_tenant))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = &row {
        let tenant: String = sqlx::Row::try_get(row, "tenant_id")?;
        sqlx::query(
            "INSERT INTO review_turns (tenant_id, last_claim)
             VALUES (?1, (SELECT COALESCE(MAX(last_claim), 0) + 1 FROM review_turns))
             ON CONFLICT (tenant_id) DO UPDATE SET last_claim = excluded.last_claim",
        )
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    row.as_ref().map(review_from_row).transpose()
}

pub(super) async fn renew(
    pool: &SqlitePool,
    id: &ReviewId,
    owner: &str,
    lease_until: Millis,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE reviews SET lease_expires = ?
         WHERE id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(lease_until)
    .bind(id.as_str())
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn finish(
    pool: &SqlitePool,
    id: &ReviewId,
    owner: &str,
    end: &ReviewEnd,
) -> Result<bool> {
    // An error rather than `false`: false tells the worker it lost the job,
    // which is not what happened.
    if !end.status.is_terminal() {
        return Err(StoreError::Invalid(format!(
            "finish review {id} as {}",
            end.status.as_str()
        )));
    }
    let (cpu, peak, wall) = usage_cols(end.usage)?;
    let r = sqlx::query(
        "UPDATE reviews
         SET status = ?, exit_code = ?, signal = ?, error = ?,
             cpu_seconds = ?, peak_memory_bytes = ?, wall_seconds = ?,
             log_bytes = ?, log_truncated = ?, outputs_truncated = ?,
             finished_at = ?, lease_owner = NULL, lease_expires = NULL
         WHERE id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(end.status.as_str())
    .bind(end.exit_code)
    .bind(end.signal)
    .bind(&end.error)
    .bind(cpu)
    .bind(peak)
    .bind(wall)
    .bind(to_i64(end.storage.log_bytes, "log bytes")?)
    .bind(end.storage.log_truncated)
    .bind(end.storage.outputs_truncated)
    .bind(now_ms())
    .bind(id.as_str())
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn requeue(
    pool: &SqlitePool,
    id: &ReviewId,
    owner: &str,
    not_before: Millis,
    error: &str,
) -> Result<bool> {
    // `attempts` stays: the next claim counts the retry.
    back_to_pending(pool, id, owner, not_before, error, 0).await
}

pub(super) async fn defer(
    pool: &SqlitePool,
    id: &ReviewId,
    owner: &str,
    not_before: Millis,
    why: &str,
) -> Result<bool> {
    // As requeue, but the claim that is handed back does not count: the
    // job never ran, and waiting for room must not use up its attempts.
    back_to_pending(pool, id, owner, not_before, why, 1).await
}

/// A running job `owner` holds goes back to `pending`, its attempts less
/// `refund` (never below zero). False if `owner` no longer holds it.
async fn back_to_pending(
    pool: &SqlitePool,
    id: &ReviewId,
    owner: &str,
    not_before: Millis,
    error: &str,
    refund: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE reviews
         SET status = 'pending', not_before = ?, error = ?,
             attempts = MAX(attempts - ?, 0),
             lease_owner = NULL, lease_expires = NULL
         WHERE id = ? AND status = 'running' AND lease_owner = ?",
    )
    .bind(not_before)
    .bind(error)
    .bind(refund)
    .bind(id.as_str())
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

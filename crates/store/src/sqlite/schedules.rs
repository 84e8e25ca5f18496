//! Schedules: cron-driven review submissions. The due scan is across
//! tenants (the scheduler's, not a tenant's); every other query is scoped
//! to the tenant.

use super::{conflict, json, BEGIN_WRITE};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const COLUMNS: &str = "id, tenant_id, name, cron, review, paused, next_run_at, last_run_at, \
                       last_review_id, last_error, created_at";

fn from_row(row: &SqliteRow) -> Result<ScheduleRecord> {
    let review: String = row.try_get("review")?;
    Ok(ScheduleRecord {
        id: ScheduleId::from_stored(row.try_get("id")?),
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        cron: row.try_get("cron")?,
        review: serde_json::from_str(&review)
            .map_err(|e| StoreError::Corrupt(format!("a schedule's review: {e}")))?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        next_run_at: row.try_get("next_run_at")?,
        last_run_at: row.try_get("last_run_at")?,
        last_review_id: row.try_get("last_review_id")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Records `s` if the tenant keeps fewer than `max` schedules: the count
/// and the insert in one write transaction, so racing creates cannot pass
/// the limit together.
pub(super) async fn create(pool: &SqlitePool, s: &ScheduleRecord, max: u32) -> Result<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schedules WHERE tenant_id = ?")
        .bind(s.tenant_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if count >= i64::from(max) {
        return Err(StoreError::CountQuota(format!(
            "a tenant keeps at most {max} schedules"
        )));
    }
    sqlx::query(
        "INSERT INTO schedules (id, tenant_id, name, cron, review, paused, next_run_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s.id.as_str())
    .bind(s.tenant_id.as_str())
    .bind(&s.name)
    .bind(&s.cron)
    .bind(json(&s.review, "a schedule's review")?)
    .bind(i64::from(s.paused))
    .bind(s.next_run_at)
    .bind(s.created_at)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict(e, || format!("schedule {}", s.name)))?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list(pool: &SqlitePool, tenant: &TenantId) -> Result<Vec<ScheduleRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE tenant_id = ? ORDER BY name"
    ))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &ScheduleId,
) -> Result<Option<ScheduleRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn delete(pool: &SqlitePool, tenant: &TenantId, id: &ScheduleId) -> Result<bool> {
    let r = sqlx::query("DELETE FROM schedules WHERE tenant_id = ? AND id = ?")
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn set_paused(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &ScheduleId,
    paused: bool,
    next_run_at: Millis,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE schedules SET paused = ?, next_run_at = ? WHERE tenant_id = ? AND id = ?",
    )
    .bind(i64::from(paused))
    .bind(next_run_at)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn due(pool: &SqlitePool, now: Millis, limit: u32) -> Result<Vec<ScheduleRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM schedules WHERE paused = 0 AND next_run_at <= ?
         ORDER BY next_run_at LIMIT ?"
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn advance(
    pool: &SqlitePool,
    id: &ScheduleId,
    expected: Millis,
    run: &ScheduleRun,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE schedules
            SET next_run_at = ?, last_run_at = ?,
                last_review_id = COALESCE(?, last_review_id), last_error = ?
          WHERE id = ? AND next_run_at = ?",
    )
    .bind(run.next)
    .bind(run.slot)
    .bind(&run.review_id)
    .bind(&run.error)
    .bind(id.as_str())
    .bind(expected)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

//! Webhook signing secrets and webhook deliveries.

use super::{insert_error, to_u32, MAX_PAGE};
use crate::jobs::*;
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

/// Bytes of randomness in a webhook secret (256 bits, as for HMAC-SHA256).
const SECRET_BYTES: usize = 32;

pub(super) async fn webhook_secret(pool: &SqlitePool, tenant: &TenantId) -> Result<String> {
    // Insert-if-missing then read: of concurrent first callers, one insert
    // wins and every caller reads the winner's secret, so all of them sign
    // with the same one. The foreign key refuses a tenant that does not
    // exist (OR IGNORE does not cover foreign keys).
    let secret = {
        use rand::Rng;
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill(&mut bytes[..]);
        hex::encode(bytes)
    };
    sqlx::query("INSERT OR IGNORE INTO tenant_secrets (tenant_id, webhook_secret) VALUES (?, ?)")
        .bind(tenant.as_str())
        .bind(&secret)
        .execute(pool)
        .await
        .map_err(|e| {
            insert_error(
                e,
                || format!("secret of {tenant}"),
                || format!("tenant {tenant}"),
            )
        })?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT webhook_secret FROM tenant_secrets WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await?;
    // Only a tenant delete between the two statements removes the row.
    stored.ok_or_else(|| StoreError::NotFound(format!("tenant {tenant}")))
}

const DELIVERY_COLS: &str = "id, tenant_id, review_id, url, body, status, attempts, \
     last_status_code, last_error, next_attempt_at, created_at, delivered_at";

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRecord> {
    let id: String = row.try_get("id")?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("{what} of delivery {id}: {e}"))
    };
    let status: String = row.try_get("status")?;
    let status = DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
    let code: Option<i64> = row.try_get("last_status_code")?;
    let last_status_code = code
        .map(|c| u16::try_from(c).map_err(|_| corrupt("status code", &c)))
        .transpose()?;
    Ok(DeliveryRecord {
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        review_id: ReviewId::from_stored(row.try_get("review_id")?),
        url: row.try_get("url")?,
        body: row.try_get("body")?,
        status,
        attempts: to_u32(row.try_get("attempts")?, "delivery attempts")?,
        last_status_code,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        id: DeliveryId::from_stored(id),
    })
}

pub(super) async fn insert(pool: &SqlitePool, d: &DeliveryRecord) -> Result<()> {
    // The (tenant_id, review_id) foreign key refuses a delivery for a job
    // that does not exist or belongs to another tenant.
    sqlx::query(&format!(
        "INSERT INTO webhook_deliveries ({DELIVERY_COLS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(d.id.as_str())
    .bind(d.tenant_id.as_str())
    .bind(d.review_id.as_str())
    .bind(&d.url)
    .bind(&d.body)
    .bind(d.status.as_str())
    .bind(i64::from(d.attempts))
    .bind(d.last_status_code.map(i64::from))
    .bind(&d.last_error)
    .bind(d.next_attempt_at)
    .bind(d.created_at)
    .bind(d.delivered_at)
    .execute(pool)
    .await
    .map_err(|e| {
        insert_error(
            e,
            || format!("delivery {}", d.id),
            || format!("review {}", d.review_id),
        )
    })?;
    Ok(())
}

pub(super) async fn due(pool: &SqlitePool, now: Millis, limit: u32) -> Result<Vec<DeliveryRecord>> {
    // Server-wide by design: the delivery loop serves every tenant.
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= ?
         ORDER BY next_attempt_at, id
         LIMIT ?"
    ))
    .bind(now)
    .bind(i64::from(limit.clamp(1, MAX_PAGE)))
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

pub(super) async fn update(pool: &SqlitePool, d: &DeliveryRecord) -> Result<()> {
    // Matching no row is not an error: the tenant (and with it the
    // delivery) may have been deleted while the attempt was in flight, and
    // there is nothing left to record the outcome on.
    let r = sqlx::query(
        "UPDATE webhook_deliveries
         SET status = ?, attempts = ?, last_status_code = ?, last_error = ?,
             next_attempt_at = ?, delivered_at = ?
         WHERE tenant_id = ? AND id = ?",
    )
    .bind(d.status.as_str())
    .bind(i64::from(d.attempts))
    .bind(d.last_status_code.map(i64::from))
    .bind(&d.last_error)
    .bind(d.next_attempt_at)
    .bind(d.delivered_at)
    .bind(d.tenant_id.as_str())
    .bind(d.id.as_str())
    .execute(pool)
    .await?;
    if r.rows_affected() == 0 {
        tracing::debug!(delivery = %d.id, "delivery gone before its outcome was recorded");
    }
    Ok(())
}

pub(super) async fn list(
    pool: &SqlitePool,
    tenant: &TenantId,
    review: &ReviewId,
) -> Result<Vec<DeliveryRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
         WHERE tenant_id = ? AND review_id = ?
         ORDER BY created_at, id"
    ))
    .bind(tenant.as_str())
    .bind(review.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

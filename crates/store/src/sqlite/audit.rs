//! The audit chains.

use super::{BEGIN_WRITE, MAX_PAGE};
use crate::anchor::Anchors;
use crate::audit::{entry_hash, entry_mac, AuditKey, GENESIS};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const AUDIT_COLS: &str = "tenant_id, seq, actor, action, target, outcome, at, prev_hash, hash";

fn entry_from_row(row: &SqliteRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        outcome: row.try_get("outcome")?,
        at: row.try_get("at")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Keys entries and anchors chains.
#[derive(Debug)]
pub(super) struct Signer {
    anchors: Anchors,
    /// Appends of one tenant (DB insert, then anchor) one at a time, so
    /// anchors are written in chain order: two racing appends could
    /// otherwise leave the older head as the anchor. Striped: a fixed
    /// number of locks, whatever the number of tenants.
    locks: Vec<tokio::sync::Mutex<()>>,
}

const STRIPES: usize = 64;

impl Signer {
    pub(super) fn new(anchors: Anchors) -> Signer {
        Signer {
            anchors,
            locks: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn lock_of(&self, tenant: &TenantId) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tenant.hash(&mut h);
        &self.locks[(h.finish() as usize) % STRIPES]
    }
}

pub(super) async fn append(
    pool: &SqlitePool,
    signer: Option<&Signer>,
    tenant: &TenantId,
    event: &AuditEvent,
) -> Result<AuditEntry> {
    let Some(signer) = signer else {
        return insert(pool, None, tenant, event).await;
    };
    let _turn = signer.lock_of(tenant).lock().await;
    let entry = insert(pool, Some(signer.anchors.key()), tenant, event).await?;
    // A failure here fails the append (and the request it records); the
    // entry itself is committed and keyed, and the next append re-anchors.
    signer.anchors.write(tenant, entry.seq, &entry.hash).await?;
    Ok(entry)
}

async fn insert(
    pool: &SqlitePool,
    key: Option<&AuditKey>,
    tenant: &TenantId,
    event: &AuditEvent,
) -> Result<AuditEntry> {
    // Reading the chain's head and inserting after it must not interleave
    // with another append: the write lock, taken at BEGIN, serializes them
    // (the primary key on (tenant_id, seq) would reject a duplicate anyway).
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let at = now_ms();
    let (actor, action, target, outcome) = (
        event.actor.as_str(),
        event.action.as_str(),
        event.target.as_str(),
        event.outcome.as_str(),
    );
    let hash = match key {
        Some(k) => entry_mac(
            k, &prev_hash, tenant, seq, actor, action, target, outcome, at,
        ),
        None => entry_hash(&prev_hash, tenant, seq, actor, action, target, outcome, at),
    };
    let entry = AuditEntry {
        seq,
        tenant_id: tenant.clone(),
        actor: event.actor.clone(),
        action: event.action.clone(),
        target: event.target.clone(),
        outcome: event.outcome.clone(),
        at,
        prev_hash,
        hash,
    };
    sqlx::query(&format!(
        "INSERT INTO audit ({AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(entry.tenant_id.as_str())
    .bind(entry.seq)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.outcome)
    .bind(entry.at)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(entry)
}

pub(super) async fn list(
    pool: &SqlitePool,
    tenant: &TenantId,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(&format!(
        "SELECT {AUDIT_COLS} FROM audit WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?"
    ))
    .bind(tenant.as_str())
    .bind(after_seq)
    .bind(i64::from(limit.clamp(1, MAX_PAGE)))
    .fetch_all(pool)
    .await?;
    rows.iter().map(entry_from_row).collect()
}

pub(super) async fn about(
    pool: &SqlitePool,
    tenant: &TenantId,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>> {
    // `target:<detail>` as a range (':' + 1 is ';') so the index on
    // (tenant_id, target) serves it; the order is a fixed choice of two
    // statements, never built from input.
    let order = if q.descending { "DESC" } else { "ASC" };
    let rows = sqlx::query(&format!(
        "SELECT {AUDIT_COLS} FROM audit
         WHERE tenant_id = ?1
           AND (target = ?2 OR (target >= ?2 || ':' AND target < ?2 || ';'))
           AND (?3 IS NULL OR at >= ?3)
           AND (?4 IS NULL OR at <= ?4)
           AND (?5 IS NULL OR seq > ?5)
           AND (?6 IS NULL OR seq < ?6)
         ORDER BY seq {order} LIMIT ?7"
    ))
    .bind(tenant.as_str())
    .bind(&q.target)
    .bind(q.from_ms)
    .bind(q.until_ms)
    .bind(q.after_seq)
    .bind(q.before_seq)
    .bind(i64::from(q.limit.clamp(1, MAX_PAGE)))
    .fetch_all(pool)
    .await?;
    rows.iter().map(entry_from_row).collect()
}

pub(super) async fn tenants(pool: &SqlitePool) -> Result<Vec<TenantId>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit ORDER BY tenant_id")
            .fetch_all(pool)
            .await?;
    Ok(ids.into_iter().map(TenantId::from_stored).collect())
}

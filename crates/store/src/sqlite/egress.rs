//! The egress log on SQLite.

use super::{to_i64, to_u64, BEGIN_WRITE, MAX_PAGE};
use crate::egress::{EgressEntry, EgressLog};
use crate::*;
use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use warden_spec::{EgressEvent, Outcome};

fn entry_from_row(row: &SqliteRow) -> Result<EgressEntry> {
    let outcome: String = row.try_get("outcome")?;
    let outcome = Outcome::parse(&outcome)
        .ok_or_else(|| StoreError::Corrupt(format!("egress outcome {outcome:?}")))?;
    let port: i64 = row.try_get("port")?;
    Ok(EgressEntry {
        seq: row.try_get("seq")?,
        event: EgressEvent {
            at_ms: to_u64(row.try_get("at_ms")?, "egress time")?,
            method: row.try_get("method")?,
            host: row.try_get("host")?,
            port: u16::try_from(port)
                .map_err(|_| StoreError::Corrupt(format!("egress port {port}")))?,
            addr: row.try_get("addr")?,
            outcome,
            rule: row.try_get("rule")?,
            reason: row.try_get("reason")?,
            detail: row.try_get("detail")?,
            bytes_up: to_u64(row.try_get("bytes_up")?, "egress bytes")?,
            bytes_down: to_u64(row.try_get("bytes_down")?, "egress bytes")?,
            duration_ms: to_u64(row.try_get("duration_ms")?, "egress duration")?,
        },
    })
}

#[async_trait]
impl EgressLog for super::SqliteMeta {
    async fn append_egress(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        events: &[EgressEvent],
    ) -> Result<()> {
        // sqlx's `Transaction` rolls back on every early return; a
        // hand-issued BEGIN whose COMMIT failed went back to the pool still
        // inside its transaction.
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        for e in events {
            sqlx::query(
                "INSERT INTO egress_events (tenant_id, sandbox_id, at_ms, method, host, port,
                 addr, outcome, rule, reason, detail, bytes_up, bytes_down, duration_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(tenant.as_str())
            .bind(sandbox.as_str())
            .bind(to_i64(e.at_ms, "egress time")?)
            .bind(&e.method)
            .bind(&e.host)
            .bind(i64::from(e.port))
            .bind(&e.addr)
            .bind(e.outcome.as_str())
            .bind(&e.rule)
            .bind(&e.reason)
            .bind(&e.detail)
            .bind(to_i64(e.bytes_up, "egress bytes")?)
            .bind(to_i64(e.bytes_down, "egress bytes")?)
            .bind(to_i64(e.duration_ms, "egress duration")?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_egress(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EgressEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM egress_events WHERE tenant_id = ? AND sandbox_id = ? AND seq > ?
             ORDER BY seq LIMIT ?",
        )
        .bind(tenant.as_str())
        .bind(sandbox.as_str())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn set_sandbox_network(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        network: &serde_json::Value,
    ) -> Result<bool> {
        let network = serde_json::to_string(network)
            .map_err(|e| StoreError::Invalid(format!("network: {e}")))?;
        let r = sqlx::query(
            "UPDATE sandboxes SET spec = json_set(spec, '$.network', json(?))
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(network)
        .bind(tenant.as_str())
        .bind(sandbox.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

//! Per-tenant command policies (JSON the server interprets).

use super::{insert_error, json};
use crate::*;
use sqlx::SqlitePool;

pub(super) async fn get(pool: &SqlitePool, tenant: &TenantId) -> Result<Option<serde_json::Value>> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT policy FROM command_policies WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await?;
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::Corrupt(format!("command policy of {tenant}: {e}")))
    })
    .transpose()
}

pub(super) async fn set(
    pool: &SqlitePool,
    tenant: &TenantId,
    policy: Option<&serde_json::Value>,
) -> Result<()> {
    let Some(policy) = policy else {
        sqlx::query("DELETE FROM command_policies WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .execute(pool)
            .await?;
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO command_policies (tenant_id, policy, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (tenant_id) DO UPDATE
         SET policy = excluded.policy, updated_at = excluded.updated_at",
    )
    .bind(tenant.as_str())
    .bind(json(policy, "command policy")?)
    .bind(now_ms())
    .execute(pool)
    .await
    .map_err(|e| insert_error(e, || "command policy".into(), || format!("tenant {tenant}")))?;
    Ok(())
}

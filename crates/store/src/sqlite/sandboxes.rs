//! Sandbox records and usage.

use super::{conflict, json, limit_plus_one, page, to_i64, to_u64, usage_cols, usage_from_row};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const SANDBOX_COLS: &str = "id, tenant_id, state, spec, labels, memory_bytes, owner, \
     created_at, expires_at, ended_at, end_reason, cpu_seconds, peak_memory_bytes, wall_seconds";

fn sandbox_from_row(row: &SqliteRow) -> Result<SandboxRecord> {
    let id: String = row.try_get("id")?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("{what} of sandbox {id}: {e}"))
    };
    let state: String = row.try_get("state")?;
    let state = SandboxState::parse(&state).ok_or_else(|| corrupt("state", &state))?;
    let spec: String = row.try_get("spec")?;
    let spec = serde_json::from_str(&spec).map_err(|e| corrupt("spec", &e))?;
    let labels: String = row.try_get("labels")?;
    let labels = serde_json::from_str(&labels).map_err(|e| corrupt("labels", &e))?;
    let usage = usage_from_row(row, &format!("sandbox {id}"))?;
    Ok(SandboxRecord {
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        state,
        spec,
        labels,
        memory_bytes: to_u64(row.try_get("memory_bytes")?, "memory limit")?,
        owner: row.try_get("owner")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
        usage,
        id: SandboxId::from_stored(id),
    })
}

pub(super) async fn insert(pool: &SqlitePool, sb: &SandboxRecord) -> Result<()> {
    let (cpu, peak, wall) = usage_cols(sb.usage)?;
    sqlx::query(&format!(
        "INSERT INTO sandboxes ({SANDBOX_COLS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(sb.id.as_str())
    .bind(sb.tenant_id.as_str())
    .bind(sb.state.as_str())
    .bind(json(&sb.spec, "spec")?)
    .bind(json(&sb.labels, "labels")?)
    .bind(to_i64(sb.memory_bytes, "memory limit")?)
    .bind(&sb.owner)
    .bind(sb.created_at)
    .bind(sb.expires_at)
    .bind(sb.ended_at)
    .bind(&sb.end_reason)
    .bind(cpu)
    .bind(peak)
    .bind(wall)
    .execute(pool)
    .await
    .map_err(|e| conflict(e, || format!("sandbox {}", sb.id)))?;
    Ok(())
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SandboxId,
) -> Result<Option<SandboxRecord>> {
    sqlx::query(&format!(
        "SELECT {SANDBOX_COLS} FROM sandboxes WHERE tenant_id = ? AND id = ?"
    ))
    .bind(tenant.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(sandbox_from_row)
    .transpose()
}

pub(super) async fn list(
    pool: &SqlitePool,
    tenant: &TenantId,
    filter: &SandboxFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Page<SandboxRecord>> {
    // The label filter is one JSON object parameter: no wanted pair may be
    // missing from the row's labels. This keeps the SQL static (no string
    // building from label keys, which are user input).
    // Two fixed spellings of the order (nothing of the request goes into
    // the SQL text).
    let (past, order) = match filter.newest_first {
        false => (">", "created_at, id"),
        true => ("<", "created_at DESC, id DESC"),
    };
    let rows = sqlx::query(&format!(
        "SELECT {SANDBOX_COLS} FROM sandboxes AS s
         WHERE tenant_id = ?1
           AND (?2 IS NULL
                OR (created_at, id) {past}
                   (SELECT created_at, id FROM sandboxes WHERE tenant_id = ?1 AND id = ?2))
           AND (json_array_length(?3) = 0
                OR state IN (SELECT value FROM json_each(?3)))
           AND NOT EXISTS (
                SELECT 1 FROM json_each(?4) AS want
                WHERE NOT EXISTS (
                    SELECT 1 FROM json_each(s.labels) AS have
                    WHERE have.key = want.key AND have.value = want.value))
         ORDER BY {order}
         LIMIT ?5"
    ))
    .bind(tenant.as_str())
    .bind(after)
    .bind(json(
        &filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "state filter",
    )?)
    .bind(json(&filter.labels, "label filter")?)
    .bind(limit_plus_one(limit))
    .fetch_all(pool)
    .await?;
    let items = rows
        .iter()
        .map(sandbox_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |s| s.id.as_str()))
}

pub(super) async fn set_expiry(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SandboxId,
    expires_at: Millis,
) -> Result<bool> {
    // Only a running sandbox can still expire; extending one that has just
    // ended (e.g. reaped) must not look like a success.
    let r = sqlx::query(
        "UPDATE sandboxes SET expires_at = ?
         WHERE tenant_id = ? AND id = ? AND state = 'running'",
    )
    .bind(expires_at)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn end(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SandboxId,
    state: SandboxState,
    reason: &str,
    usage: Option<Usage>,
) -> Result<bool> {
    // Ending into `running` is a caller bug; it changes nothing.
    debug_assert_ne!(state, SandboxState::Running, "end_sandbox into running");
    if state == SandboxState::Running {
        return Ok(false);
    }
    let (cpu, peak, wall) = usage_cols(usage)?;
    // `state = 'running'` in the WHERE makes ending a compare-and-set: of
    // two concurrent enders (delete vs. timeout), exactly one wins. Usage
    // adds up over the runs of a sandbox paused and resumed.
    let r = sqlx::query(
        "UPDATE sandboxes
         SET state = ?1, ended_at = ?2, end_reason = ?3,
             cpu_seconds = COALESCE(cpu_seconds + ?4, ?4, cpu_seconds),
             peak_memory_bytes = COALESCE(MAX(peak_memory_bytes, ?5), ?5, peak_memory_bytes),
             wall_seconds = COALESCE(wall_seconds + ?6, ?6, wall_seconds)
         WHERE tenant_id = ?7 AND id = ?8 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(now_ms())
    .bind(reason)
    .bind(cpu)
    .bind(peak)
    .bind(wall)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn resume(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SandboxId,
    owner: &str,
    expires_at: Millis,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sandboxes
         SET state = 'running', owner = ?, expires_at = ?, ended_at = NULL, end_reason = NULL
         WHERE tenant_id = ? AND id = ? AND state = 'paused'",
    )
    .bind(owner)
    .bind(expires_at)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn end_paused(
    pool: &SqlitePool,
    tenant: &TenantId,
    id: &SandboxId,
    state: SandboxState,
    reason: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sandboxes SET state = ?, ended_at = ?, end_reason = ?
         WHERE tenant_id = ? AND id = ? AND state = 'paused'",
    )
    .bind(state.as_str())
    .bind(now_ms())
    .bind(reason)
    .bind(tenant.as_str())
    .bind(id.as_str())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn running_totals(pool: &SqlitePool, tenant: &TenantId) -> Result<(u32, u64)> {
    let (count, memory): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(memory_bytes), 0) FROM sandboxes
         WHERE tenant_id = ? AND state = 'running'",
    )
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await?;
    let count = u32::try_from(count)
        .map_err(|_| StoreError::Corrupt(format!("running sandbox count {count}")))?;
    Ok((count, to_u64(memory, "running memory total")?))
}

pub(super) async fn reap_foreign(pool: &SqlitePool, owner: &str) -> Result<Vec<SandboxRecord>> {
    // Server-wide by design: called once at start-up, before any tenant
    // request, for every tenant's sandboxes. One statement, so a sandbox is
    // either reaped and returned, or not touched.
    let rows = sqlx::query(&format!(
        "UPDATE sandboxes
         SET state = 'lost', ended_at = ?, end_reason = 'server restarted'
         WHERE state = 'running' AND owner <> ?
         RETURNING {SANDBOX_COLS}"
    ))
    .bind(now_ms())
    .bind(owner)
    .fetch_all(pool)
    .await?;
    let mut reaped = rows
        .iter()
        .map(sandbox_from_row)
        .collect::<Result<Vec<_>>>()?;
    // RETURNING gives no order guarantee; callers (and logs) get a stable one.
    reaped.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(reaped)
}

pub(super) async fn usage_between(
    pool: &SqlitePool,
    tenant: &TenantId,
    from: Millis,
    to: Millis,
) -> Result<UsageSum> {
    let (count, cpu, wall, peak): (i64, f64, f64, i64) = sqlx::query_as(
        "SELECT COUNT(*),
                CAST(COALESCE(SUM(cpu_seconds), 0) AS REAL),
                CAST(COALESCE(SUM(wall_seconds), 0) AS REAL),
                COALESCE(MAX(peak_memory_bytes), 0)
         FROM sandboxes
         WHERE tenant_id = ? AND ended_at >= ? AND ended_at < ?
           AND cpu_seconds IS NOT NULL",
    )
    .bind(tenant.as_str())
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    Ok(UsageSum {
        sandboxes: to_u64(count, "sandbox count")?,
        cpu_seconds: cpu,
        wall_seconds: wall,
        max_peak_memory_bytes: to_u64(peak, "peak memory")?,
    })
}

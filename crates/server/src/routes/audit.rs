//! A tenant's audit chain and usage.

use crate::api::{self, parse_time, Page, UsageSum};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::extract::Query;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::now_ms;

#[derive(Deserialize, IntoParams)]
pub struct AuditParams {
    /// Entries after this sequence number.
    pub after: Option<i64>,
    /// Also accepted as the page cursor.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Page<api::AuditEntry>)))]
pub async fn audit(
    caller: Caller,
    Query(p): Query<AuditParams>,
) -> ApiResult<Json<Page<api::AuditEntry>>> {
    let after = match (&p.cursor, p.after) {
        (Some(c), _) => c
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("cursor is a sequence number"))?,
        (None, a) => a.unwrap_or(0),
    };
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let items = caller.store.list_audit(after, limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(Page {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct UsageParams {
    /// RFC 3339; default: the Unix epoch.
    pub from: Option<String>,
    /// RFC 3339; default: now.
    pub to: Option<String>,
}

#[utoipa::path(get, path = "/v1/usage", tag = "audit", params(UsageParams),
    responses((status = 200, body = UsageSum), (status = 400, body = ErrorBody)))]
pub async fn usage(caller: Caller, Query(p): Query<UsageParams>) -> ApiResult<Json<UsageSum>> {
    let parse = |v: &Option<String>, default: i64, name: &str| match v {
        Some(s) => parse_time(s)
            .ok_or_else(|| ApiError::bad_request(format!("{name} is not an RFC 3339 time: {s:?}"))),
        None => Ok(default),
    };
    let from = parse(&p.from, 0, "from")?;
    let to = parse(&p.to, now_ms() + 1, "to")?;
    if from > to {
        return Err(ApiError::bad_request("from is after to"));
    }
    let sum = caller.store.usage_between(from, to).await?;
    let storage_bytes = caller.store.storage_bytes().await?;
    Ok(Json(UsageSum {
        from: api::time(from),
        to: api::time(to),
        sandboxes: sum.sandboxes,
        cpu_seconds: sum.cpu_seconds,
        wall_seconds: sum.wall_seconds,
        max_peak_memory_bytes: sum.max_peak_memory_bytes,
        storage_bytes,
    }))
}

//! `/v1/sandboxes/{id}/pause`, `/resume` and `/fork` (`service::pause`
//! and `service::fork` do the work).

use crate::api;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

/// `POST /v1/sandboxes/{id}/pause`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseSandbox {
    /// `filesystem` (default): its processes end, its files are kept.
    /// `full`: its processes and memory are kept too (gVisor sandboxes
    /// without an egress allowlist; refused with the reason otherwise).
    pub mode: Option<String>,
}

/// `POST /v1/sandboxes/{id}/resume`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResumeSandbox {
    /// Its lifetime from now; default: the one it was created with.
    pub timeout_secs: Option<u64>,
}

#[utoipa::path(
    operation_id = "pause_sandbox",
    post, path = "/v1/sandboxes/{id}/pause", tag = "sandboxes", request_body = PauseSandbox,
    responses((status = 200, body = api::Sandbox, description = "paused: its processes ended, its files kept, its memory, CPU and slot freed"),
              (status = 400, body = ErrorBody, description = "mode `full`"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "not running (already paused, ended), or a review job's"),
              (status = 413, body = ErrorBody), (status = 429, body = ErrorBody, description = "`quota_exceeded`: its files need `max_snapshots` or `max_storage_bytes` room")))]
pub async fn pause(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<PauseSandbox>>,
) -> ApiResult<Json<api::Sandbox>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let r = service::pause::pause(&st, &caller, &id, req.mode.as_deref()).await?;
    Ok(Json(r.into()))
}

#[utoipa::path(
    operation_id = "resume_sandbox",
    post, path = "/v1/sandboxes/{id}/resume", tag = "sandboxes", request_body = ResumeSandbox,
    responses((status = 200, body = api::Sandbox, description = "running again, same id, with its files (also when it was running already)"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "it has ended"),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn resume(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<ResumeSandbox>>,
) -> ApiResult<Json<api::Sandbox>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (r, _) = service::pause::resume(&st, &caller, &id, req.timeout_secs).await?;
    Ok(Json(r.into()))
}

#[utoipa::path(
    operation_id = "fork_sandbox",
    post, path = "/v1/sandboxes/{id}/fork", tag = "sandboxes",
    request_body = service::fork::ForkSandbox,
    responses((status = 201, body = api::Sandbox, description = "a new sandbox with the source's files as they were at the fork (the source keeps running)"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the source is not running"),
              (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn fork(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<service::fork::ForkSandbox>>,
) -> ApiResult<(axum::http::StatusCode, Json<api::Sandbox>)> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let r = service::fork::fork(&st, &caller, &id, req).await?;
    Ok((axum::http::StatusCode::CREATED, Json(r.into())))
}

//! E2B's pause and resume over Warden's (`service::pause`): `pause()`
//! (`POST /sandboxes/{id}/pause`), `Sandbox.connect()` of a paused
//! sandbox and the older `POST /sandboxes/{id}/resume`, which resume it
//! under the same id. `memory: false` (`mode="filesystem"`) keeps the
//! files. `memory: true` is E2B's default (its API says so, and some SDK
//! versions send it with every `pause()`), so it means what no `memory`
//! means: a sandbox that can keep its processes and memory (gVisor, no
//! allowlist) does, as on E2B, and any other keeps its files. `/v1`'s
//! `mode: "full"` is the strict form, refused where memory cannot be kept.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bJson, E2bResult};
use super::models::CreatedSandbox;
use super::view;
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;

/// `SandboxPauseRequest`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct PauseRequest {
    pub memory: Option<bool>,
    #[allow(dead_code)]
    pub require_healthy_guest: Option<bool>,
}

/// `ResumedSandbox` (the older resume).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct ResumeRequest {
    pub timeout: Option<i64>,
}

/// `POST /sandboxes/{id}/pause`: `204`; `409` if it is paused already
/// (the SDKs then answer false), `404` if it is not running.
pub async fn pause(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> E2bResult<StatusCode> {
    let req: PauseRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| E2bError::bad_request(e.to_string()))?
    };
    let r = view::record(&caller, &id).await?;
    if r.state == warden_store::SandboxState::Paused {
        return Err(E2bError::conflict(format!(
            "sandbox {id:?} is already paused"
        )));
    }
    view::running(&st, &caller, &id).await?;
    let can_keep_memory =
        service::pause_memory::refusal(&crate::api::StoredSpec::of(&r.spec)).is_none();
    let mode = match req.memory {
        Some(false) => "filesystem",
        Some(true) | None if can_keep_memory => "full",
        Some(true) | None => "filesystem",
    };
    let mode = Some(mode);
    service::pause::pause(&st, &caller, &id, mode).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resumes a paused sandbox for `connect` and `resume`; `None` when it was
/// running already (nothing resumed).
pub async fn resume_if_paused(
    st: &Shared,
    caller: &crate::auth::Caller,
    id: &str,
    timeout: Option<i64>,
) -> E2bResult<Option<warden_store::SandboxRecord>> {
    let r = view::record(caller, id).await?;
    if r.state != warden_store::SandboxState::Paused {
        return Ok(None);
    }
    let secs = timeout.map(|t| t.clamp(1, service::sandboxes::MAX_TIMEOUT_SECS as i64) as u64);
    let (record, resumed) = service::pause::resume(st, caller, id, secs).await?;
    Ok(resumed.then_some(record))
}

/// `POST /sandboxes/{id}/resume` (E2B's older API): `201` with the
/// sandbox; `409` if it is not paused.
pub async fn resume(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    E2bJson(req): E2bJson<ResumeRequest>,
) -> E2bResult<(StatusCode, Json<CreatedSandbox>)> {
    match resume_if_paused(&st, &caller, &id, req.timeout).await? {
        Some(r) => Ok((
            StatusCode::CREATED,
            Json(view::created(&st, &r, view::domain(&st, &headers))),
        )),
        None => Err(E2bError::conflict(format!("sandbox {id:?} is not paused"))),
    }
}

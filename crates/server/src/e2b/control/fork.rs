//! `POST /sandboxes/{id}/fork` (`Sandbox.fork(count=…)` in the SDKs): up
//! to 20 new sandboxes from one taking of the source's files
//! (`service::fork`), each answered on its own as E2B does: the sandbox,
//! or the error that kept it from starting. Warden's fork is of the
//! filesystem: the source's processes and memory are not carried over.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bJson, E2bResult};
use super::models::CreatedSandbox;
use super::view;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use warden_store::SandboxState;

/// E2B's `SandboxForkRequest`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ForkRequest {
    /// Seconds the forks live (E2B's default: 15).
    timeout: Option<u64>,
    /// 1 to 20 (default 1).
    count: Option<usize>,
}

/// E2B's `SandboxForkResult`: exactly one of the two.
#[derive(Serialize)]
pub struct ForkResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<CreatedSandbox>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ForkError>,
}

#[derive(Serialize)]
struct ForkError {
    code: u16,
    message: String,
}

pub async fn fork(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    E2bJson(req): E2bJson<ForkRequest>,
) -> E2bResult<(StatusCode, Json<Vec<ForkResult>>)> {
    // The source must be the caller's (404 otherwise, as on every route)
    // and not ended (E2B: a killed sandbox is not found).
    let source = view::record(&caller, &id).await?;
    if !matches!(source.state, SandboxState::Running | SandboxState::Paused) {
        return Err(view::ended(&id, &source));
    }
    let count = req.count.unwrap_or(1);
    if !(1..=20).contains(&count) {
        return Err(E2bError::bad_request("count: 1 to 20"));
    }
    let ask = crate::service::fork::ForkSandbox {
        timeout_secs: Some(req.timeout.unwrap_or(15).max(1)),
        labels: None,
    };
    let made = crate::service::fork::fork_n(&st, &caller, &id, count, ask).await?;
    let domain = view::domain(&st, &headers);
    let results = made
        .into_iter()
        .map(|r| match r {
            Ok(record) => ForkResult {
                sandbox: Some(view::created(&st, &record, domain.clone())),
                error: None,
            },
            Err(e) => {
                let e = E2bError::from(e);
                ForkResult {
                    sandbox: None,
                    error: Some(ForkError {
                        code: e.status.as_u16(),
                        message: e.message,
                    }),
                }
            }
        })
        .collect();
    Ok((StatusCode::CREATED, Json(results)))
}

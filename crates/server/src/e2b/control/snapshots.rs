//! E2B's snapshot API over Warden's snapshots (`service::snapshots`):
//! `create_snapshot` (`POST /sandboxes/{id}/snapshots`), `list_snapshots`
//! (`GET /snapshots`), `delete_snapshot` (`DELETE /templates/{id}`: E2B
//! keeps snapshots as templates), and `Sandbox.create(<snapshot>)`, where
//! the template names the snapshot by id or name.
//!
//! Warden's snapshots are of files (E2B's `mode="filesystem"`): a memory
//! snapshot (`memory: true`) is refused, and one that does not say takes
//! the files.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bJson, E2bResult};
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use warden_store::{SnapshotRecord, TenantStore};

/// `SandboxSnapshotRequest`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SnapshotRequest {
    pub name: Option<String>,
    pub memory: Option<bool>,
}

/// `SnapshotInfo`.
#[derive(Serialize)]
pub struct SnapshotInfo {
    #[serde(rename = "snapshotID")]
    snapshot_id: String,
    names: Vec<String>,
}

impl From<SnapshotRecord> for SnapshotInfo {
    fn from(s: SnapshotRecord) -> SnapshotInfo {
        SnapshotInfo {
            snapshot_id: s.id.to_string(),
            names: s.name.into_iter().collect(),
        }
    }
}

/// The snapshot a create's template names, if it names one of the
/// caller's (by id, or by name with an optional `:default` tag).
pub async fn named(store: &TenantStore, template: &str) -> E2bResult<Option<String>> {
    let t = template.trim();
    let t = t.strip_suffix(":default").unwrap_or(t);
    if t.is_empty() || t.contains(['/', ':']) {
        return Ok(None);
    }
    Ok(store
        .find_snapshot(t)
        .await
        .map_err(service::Error::from)?
        .map(|s| s.id.to_string()))
}

/// `POST /sandboxes/{sandboxID}/snapshots`.
pub async fn create(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    E2bJson(req): E2bJson<SnapshotRequest>,
) -> E2bResult<(StatusCode, Json<SnapshotInfo>)> {
    if req.memory == Some(true) {
        super::view::record(&caller, &id).await?;
        return Err(E2bError::bad_request(
            "Warden takes filesystem snapshots only (mode=\"filesystem\"): running \
             processes and memory are not kept",
        ));
    }
    let s = service::snapshots::create(&st, &caller, &id, req.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "sandboxID")]
    sandbox_id: Option<String>,
    name: Option<String>,
}

/// `GET /snapshots` (one page: a tenant keeps at most `max_snapshots`).
pub async fn list(
    E2bCaller(caller): E2bCaller,
    Query(q): Query<ListQuery>,
) -> E2bResult<Json<Vec<SnapshotInfo>>> {
    let items = caller
        .store
        .list_snapshots()
        .await
        .map_err(service::Error::from)?;
    let name = q
        .name
        .as_deref()
        .map(|n| n.strip_suffix(":default").unwrap_or(n));
    Ok(Json(
        items
            .into_iter()
            .filter(|s| s.ready)
            .filter(|s| {
                q.sandbox_id
                    .as_deref()
                    .is_none_or(|id| s.source_sandbox.as_str() == id)
            })
            .filter(|s| name.is_none_or(|n| s.id.as_str() == n || s.name.as_deref() == Some(n)))
            .map(SnapshotInfo::from)
            .collect(),
    ))
}

/// `/templates/{...}`: `DELETE /templates/{templateID}` of a snapshot
/// deletes it (E2B's `delete_snapshot`); the rest of `/templates` is the
/// operator's (refused, see `unsupported::templates`).
pub async fn templates(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    method: Method,
    Path(rest): Path<String>,
) -> E2bResult<StatusCode> {
    if method != Method::DELETE || rest.contains('/') {
        return super::unsupported::templates(E2bCaller(caller))
            .await
            .map(|()| StatusCode::OK);
    }
    match named(&caller.store, &rest).await? {
        Some(snapshot) => {
            service::snapshots::delete(&st, &caller, &snapshot).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(E2bError::not_found(format!("template {rest:?} not found"))),
    }
}

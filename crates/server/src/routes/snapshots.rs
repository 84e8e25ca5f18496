//! `/v1/snapshots` and `/v1/sandboxes/{id}/snapshots`: the HTTP side of a
//! tenant's snapshots (`service::snapshots` does the work).

use crate::api_snapshots::{CreateSnapshot, Snapshot, SnapshotList};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

#[utoipa::path(
    operation_id = "create_snapshot",
    post, path = "/v1/sandboxes/{id}/snapshots", tag = "snapshots",
    request_body = CreateSnapshot,
    params(("id" = String, Path, description = "the live sandbox to take the snapshot of")),
    responses((status = 201, body = Snapshot,
               description = "taken; the sandbox kept running"),
              (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "a snapshot of that name exists, or the sandbox has ended"),
              (status = 413, body = ErrorBody, description = "more files than a snapshot may hold (`[limits] max_snapshot_bytes`, 200000 entries)"),
              (status = 429, body = ErrorBody, description = "`quota_exceeded`: `max_snapshots` or `max_storage_bytes`")))]
pub async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<CreateSnapshot>>,
) -> ApiResult<(StatusCode, Json<Snapshot>)> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let s = service::snapshots::create(&st, &caller, &id, req.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

#[utoipa::path(
    operation_id = "list_snapshots",
    get, path = "/v1/snapshots", tag = "snapshots",
    responses((status = 200, body = SnapshotList)))]
pub async fn list(caller: Caller) -> ApiResult<Json<SnapshotList>> {
    let items = caller
        .store
        .list_snapshots()
        .await
        .map_err(service::Error::from)?;
    Ok(Json(SnapshotList {
        items: items.into_iter().map(Snapshot::from).collect(),
    }))
}

#[utoipa::path(
    operation_id = "get_snapshot",
    get, path = "/v1/snapshots/{snapshot}", tag = "snapshots",
    params(("snapshot" = String, Path, description = "the snapshot's id or name")),
    responses((status = 200, body = Snapshot), (status = 404, body = ErrorBody)))]
pub async fn get(caller: Caller, Path(snapshot): Path<String>) -> ApiResult<Json<Snapshot>> {
    let s = service::snapshots::find(&caller.store, &snapshot).await?;
    Ok(Json(s.into()))
}

#[utoipa::path(
    operation_id = "delete_snapshot",
    delete, path = "/v1/snapshots/{snapshot}", tag = "snapshots",
    params(("snapshot" = String, Path, description = "the snapshot's id or name")),
    responses((status = 204, description = "deleted (sandboxes made from it keep their files)"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "it is still being taken")))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(snapshot): Path<String>,
) -> ApiResult<StatusCode> {
    service::snapshots::delete(&st, &caller, &snapshot).await?;
    Ok(StatusCode::NO_CONTENT)
}

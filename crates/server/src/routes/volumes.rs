//! `/v1/volumes`: the HTTP side of a tenant's volumes
//! (`service::volumes` does the work).

use crate::api_volumes::{CreateVolume, Volume, VolumeList};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

#[utoipa::path(
    operation_id = "create_volume",
    post, path = "/v1/volumes", tag = "volumes", request_body = CreateVolume,
    responses((status = 201, body = Volume), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the tenant has a volume of that name"),
              (status = 429, body = ErrorBody, description = "`quota_exceeded`: `max_volumes` or `max_storage_bytes`"),
              (status = 503, body = ErrorBody, description = "`capacity`: this node's disk has no room")))]
pub async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<CreateVolume>,
) -> ApiResult<(StatusCode, Json<Volume>)> {
    let v = service::volumes::create(&st, &caller, &req.name, req.size_bytes).await?;
    Ok((
        StatusCode::CREATED,
        Json(service::volumes::shown_one(&st, v).await?),
    ))
}

#[utoipa::path(
    operation_id = "list_volumes",
    get, path = "/v1/volumes", tag = "volumes",
    responses((status = 200, body = VolumeList)))]
pub async fn list(caller: Caller, State(st): State<Shared>) -> ApiResult<Json<VolumeList>> {
    let items = caller
        .store
        .list_volumes()
        .await
        .map_err(service::Error::from)?;
    Ok(Json(VolumeList {
        items: service::volumes::shown(&st, items).await?,
    }))
}

#[utoipa::path(
    operation_id = "get_volume",
    get, path = "/v1/volumes/{volume}", tag = "volumes",
    params(("volume" = String, Path, description = "the volume's id or name")),
    responses((status = 200, body = Volume), (status = 404, body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(st): State<Shared>,
    Path(volume): Path<String>,
) -> ApiResult<Json<Volume>> {
    let v = service::volumes::find(&caller.store, &volume).await?;
    Ok(Json(service::volumes::shown_one(&st, v).await?))
}

#[utoipa::path(
    operation_id = "delete_volume",
    delete, path = "/v1/volumes/{volume}", tag = "volumes",
    params(("volume" = String, Path, description = "the volume's id or name")),
    responses((status = 204, description = "deleted, with every byte of it"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "a live sandbox has it mounted, or it is still being created")))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(volume): Path<String>,
) -> ApiResult<StatusCode> {
    service::volumes::delete(&st, &caller, &volume).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/v1/images`: the images a tenant may start sandboxes from (the
//! operator's and its own) and building its own (`service::images` and
//! `service::image_build` do the work).

use crate::api_images::{BuildEvent, BuildImage, ImageInfo};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service;
use crate::state::Shared;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ImageList {
    pub items: Vec<ImageInfo>,
}

#[utoipa::path(
    operation_id = "build_image",
    post, path = "/v1/images", tag = "images",
    request_body = BuildImage,
    responses((status = 200, body = BuildEvent, content_type = "application/x-ndjson",
               description = "the build's progress, one event a line: `step` (with `cached`), \
                              `output`, then `done` (the image) or `error` (the image is \
                              unchanged). Closing the connection stops the build"),
              (status = 400, body = ErrorBody, description = "a bad name, base or step"),
              (status = 404, body = ErrorBody, description = "a file step's file is not the caller's"),
              (status = 409, body = ErrorBody, description = "another build of the caller's is running")))]
pub async fn build(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<BuildImage>,
) -> ApiResult<Response> {
    let plan = service::image_build::plan(&st, &caller, req).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<BuildEvent>(64);
    tokio::spawn(async move {
        let events = service::image_build::Events(tx);
        if let Err(e) = service::image_build::run(&st, &caller, plan, &events).await {
            let _ = events
                .0
                .send(BuildEvent::Error {
                    code: e.code().to_string(),
                    message: e.to_string(),
                })
                .await;
        }
    });
    let lines = tokio_stream::wrappers::ReceiverStream::new(rx).map(|e| {
        let mut line = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok::<_, std::io::Error>(bytes::Bytes::from(line))
    });
    let mut resp = Body::from_stream(lines).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

#[utoipa::path(
    operation_id = "list_images",
    get, path = "/v1/images", tag = "images",
    responses((status = 200, body = ImageList,
               description = "the operator's images, then the caller's own")))]
pub async fn list(caller: Caller, State(st): State<Shared>) -> ApiResult<Json<ImageList>> {
    Ok(Json(ImageList {
        items: service::images::list(&st, &caller.store).await?,
    }))
}

#[utoipa::path(
    operation_id = "get_image",
    get, path = "/v1/images/{name}", tag = "images",
    params(("name" = String, Path, description = "the image's name")),
    responses((status = 200, body = ImageInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<Json<ImageInfo>> {
    Ok(Json(service::images::get(&st, &caller.store, &name).await?))
}

#[utoipa::path(
    operation_id = "delete_image",
    delete, path = "/v1/images/{name}", tag = "images",
    params(("name" = String, Path, description = "the caller's image")),
    responses((status = 204, description = "deleted (sandboxes started from it keep running on it)"),
              (status = 403, body = ErrorBody, description = "an operator's image"),
              (status = 404, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    service::images::delete(&st, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

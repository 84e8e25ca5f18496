//! A tenant's uploads over `/v1`: the request read (raw body, multipart,
//! a signed URL's token) and the answer presented; the use cases are
//! `service::files`.

use crate::api::{self, Page, PageParams, UploadUrl, UploadUrlRequest};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::files;
use crate::state::Shared;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::ObjectKind;

/// The body's declared length, if the client sent a valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[derive(Deserialize, IntoParams)]
pub struct UploadParams {
    /// The file's name (raw-body uploads).
    pub name: Option<String>,
}

#[utoipa::path(post, path = "/v1/files", tag = "files", params(UploadParams),
    request_body(content = Vec<u8>, description = "raw bytes with ?name=, or multipart/form-data with a `file` part", content_type = "application/octet-stream"),
    responses((status = 201, body = api::File), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, description = "type_not_allowed: the bytes are of a type the tenant does not accept", body = ErrorBody),
        (status = 422, description = "empty_file, archive_rejected (names the zip limit) or malware_detected", body = ErrorBody),
        (status = 503, description = "scanner_unavailable: the scanner failed and the server is fail-closed", body = ErrorBody),
        (status = 507, description = "storage_full: the server's data disk is full", body = ErrorBody)))]
pub async fn upload(
    caller: Caller,
    State(st): State<Shared>,
    Query(p): Query<UploadParams>,
    req: Request,
) -> ApiResult<(StatusCode, Json<api::File>)> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let meta = if multipart {
        let mut mp = Multipart::from_request(req, &st)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let mut stored = None;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?
        {
            if field.name() != Some("file") {
                continue;
            }
            let name = p
                .name
                .clone()
                .or_else(|| field.file_name().map(str::to_string))
                .ok_or_else(|| ApiError::bad_request("the `file` part has no filename"))?;
            stored =
                Some(files::upload(&st, &caller.store, caller.actor(), &name, field, None).await?);
            break;
        }
        stored.ok_or_else(|| ApiError::bad_request("no multipart part named `file`"))?
    } else {
        let name = p
            .name
            .ok_or_else(|| ApiError::bad_request("raw uploads need ?name=FILENAME"))?;
        let declared = content_length(req.headers());
        let body = req.into_body().into_data_stream();
        files::upload(&st, &caller.store, caller.actor(), &name, body, declared).await?
    };
    Ok((StatusCode::CREATED, Json(meta.into())))
}

#[utoipa::path(
    operation_id = "list_files",
    get, path = "/v1/files", tag = "files", params(PageParams),
    responses((status = 200, body = Page<api::File>)))]
pub async fn list(caller: Caller, Query(p): Query<PageParams>) -> ApiResult<Json<Page<api::File>>> {
    let page = caller
        .store
        .list_files(p.cursor.as_deref(), p.limit())
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(
    operation_id = "get_file",
    get, path = "/v1/files/{id}", tag = "files",
    responses((status = 200, body = api::File), (status = 404, body = ErrorBody)))]
pub async fn get(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<api::File>> {
    Ok(Json(files::find(&caller.store, &id).await?.into()))
}

#[utoipa::path(get, path = "/v1/files/{id}/content", tag = "files",
    responses((status = 200, description = "the file's bytes"), (status = 404, body = ErrorBody)))]
pub async fn content(caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let meta = files::find(&caller.store, &id).await?;
    let stream = caller
        .store
        .objects()
        .get_stream(ObjectKind::Files, meta.id.as_str())
        .await?;
    let mut resp =
        Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other))).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&meta.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", meta.sha256)) {
        h.insert(header::ETAG, v);
    }
    let encoded: String = url::form_urlencoded::byte_serialize(meta.name.as_bytes()).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[utoipa::path(
    operation_id = "delete_file",
    delete, path = "/v1/files/{id}", tag = "files",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    files::delete(&st, &caller.store, caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/files/upload-url", tag = "files", request_body = UploadUrlRequest,
    responses((status = 201, body = UploadUrl), (status = 400, body = ErrorBody)))]
pub async fn upload_url(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<UploadUrlRequest>,
) -> ApiResult<(StatusCode, Json<UploadUrl>)> {
    let (url, expires) = files::upload_url(
        &st,
        &caller.store,
        caller.actor(),
        req.name,
        req.expires_in_secs,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadUrl {
            url,
            method: "PUT".into(),
            expires_at: api::time(expires),
        }),
    ))
}

#[utoipa::path(put, path = "/v1/uploads/{token}", tag = "files",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = api::File), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, description = "type_not_allowed", body = ErrorBody),
        (status = 422, description = "empty_file, archive_rejected or malware_detected", body = ErrorBody),
        (status = 503, description = "scanner_unavailable", body = ErrorBody),
        (status = 507, description = "storage_full", body = ErrorBody)))]
pub async fn signed_upload(
    State(st): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<api::File>)> {
    let stream = body.into_data_stream();
    let meta = files::signed_upload(&st, &token, stream, content_length(&headers)).await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

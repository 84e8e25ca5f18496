//! A tenant's uploads: streamed into the object store, keyed by id.

use crate::api::{self, Page, PageParams, UploadUrl, UploadUrlRequest};
use crate::auth::Caller;
use crate::checks;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::audit::{Action, Audit};
use crate::signed::{self, Claims, TokenError};
use crate::sniff;
use crate::state::Shared;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::{now_ms, FileId, FileMeta, ObjectKind, TenantStore};

/// The body's declared length, if the client sent a valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn file_id(id: &str) -> ApiResult<FileId> {
    FileId::parse(id).ok_or_else(|| ApiError::not_found("file"))
}

/// The most one file may hold (the tenant's `max_file_bytes`); the storage
/// quota is enforced as the bytes arrive, by reservations (`put_file`).
async fn file_limit(store: &TenantStore) -> ApiResult<u64> {
    let tenant = store
        .tenant()
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(tenant.quotas.max_file_bytes)
}

/// Reads and drops what is left of a refused upload's body (up to 64 MiB),
/// so the client, still sending, reads the answer instead of a reset.
async fn drain_rest<S, E>(stream: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > 64 << 20 {
            break;
        }
    }
}

/// Streams one upload into the store, checks it (`checks`: type, archive
/// limits, scanner) and records it. A refused upload's object is deleted
/// and the refusal audited as `actor`'s. `declared` is the body's
/// Content-Length when the client sent one (reserved up front).
pub async fn store_upload<S, E>(
    st: &Shared,
    store: &TenantStore,
    actor: &str,
    name: &str,
    stream: S,
    declared: Option<u64>,
) -> ApiResult<FileMeta>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    sniff::check_name(name).map_err(ApiError::bad_request)?;
    let limit = file_limit(store).await?;
    let id = FileId::generate();
    let mut stream = Box::pin(stream);
    let put = match store.put_file(&id, &mut stream, limit, declared).await {
        Ok(p) => p,
        Err(warden_store::StoreError::TooLarge { limit }) => {
            drain_rest(&mut stream).await;
            return Err(ApiError::too_large(format!(
                "max_file_bytes: the file is larger than {limit} bytes"
            )));
        }
        // The body itself failed: nothing left to read.
        Err(e @ warden_store::StoreError::Upload(_)) => return Err(e.into()),
        // Refused for the quota, or the store failed (a full disk): the
        // client, still sending, reads the answer.
        Err(e) => {
            drain_rest(&mut stream).await;
            return Err(e.into());
        }
    };
    let passed = match checks::run(st, store, &id, name, &put).await {
        Ok(p) => p,
        Err(rejection) => {
            if let Err(e) = store.objects().delete(ObjectKind::Files, id.as_str()).await {
                tracing::warn!(file = %id, error = %e, "could not delete a refused upload");
            }
            store.release_upload(&id).await;
            st.audit(
                store.tenant_id(),
                Audit {
                    actor,
                    action: Action::FileUpload,
                    target: name,
                    outcome: &rejection.outcome,
                },
            )
            .await?;
            return Err(rejection.error);
        }
    };
    let meta = FileMeta {
        id: id.clone(),
        tenant_id: store.tenant_id().clone(),
        name: name.to_string(),
        size: put.size,
        sha256: put.sha256,
        content_type: passed.content_type,
        created_at: now_ms(),
        scan: passed.scan,
    };
    if let Err(e) = store.insert_file(&meta).await {
        let _ = store.objects().delete(ObjectKind::Files, id.as_str()).await;
        store.release_upload(&id).await;
        return Err(e.into());
    }
    Ok(meta)
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
                Some(store_upload(&st, &caller.store, caller.actor(), &name, field, None).await?);
            break;
        }
        stored.ok_or_else(|| ApiError::bad_request("no multipart part named `file`"))?
    } else {
        let name = p
            .name
            .ok_or_else(|| ApiError::bad_request("raw uploads need ?name=FILENAME"))?;
        let declared = content_length(req.headers());
        let body = req.into_body().into_data_stream();
        store_upload(&st, &caller.store, caller.actor(), &name, body, declared).await?
    };
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::FileUpload,
            target: meta.id.as_str(),
            outcome: "ok",
        },
    )
    .await?;
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

async fn find(caller: &Caller, id: &str) -> ApiResult<FileMeta> {
    caller
        .store
        .get_file(&file_id(id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))
}

#[utoipa::path(
    operation_id = "get_file",
    get, path = "/v1/files/{id}", tag = "files",
    responses((status = 200, body = api::File), (status = 404, body = ErrorBody)))]
pub async fn get(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<api::File>> {
    Ok(Json(find(&caller, &id).await?.into()))
}

#[utoipa::path(get, path = "/v1/files/{id}/content", tag = "files",
    responses((status = 200, description = "the file's bytes"), (status = 404, body = ErrorBody)))]
pub async fn content(caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let meta = find(&caller, &id).await?;
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
    let id = file_id(&id)?;
    if !caller.store.delete_file(&id).await? {
        return Err(ApiError::not_found("file"));
    }
    caller
        .store
        .objects()
        .delete(ObjectKind::Files, id.as_str())
        .await?;
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::FileDelete,
            target: id.as_str(),
            outcome: "ok",
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/files/upload-url", tag = "files", request_body = UploadUrlRequest,
    responses((status = 201, body = UploadUrl), (status = 400, body = ErrorBody)))]
pub async fn upload_url(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<UploadUrlRequest>,
) -> ApiResult<(StatusCode, Json<UploadUrl>)> {
    sniff::check_name(&req.name).map_err(ApiError::bad_request)?;
    let secs = req.expires_in_secs.unwrap_or(900);
    if !(1..=86_400).contains(&secs) {
        return Err(ApiError::bad_request("expires_in_secs must be 1 to 86400"));
    }
    let expires = now_ms() + secs as i64 * 1000;
    let nonce: [u8; 16] = rand::random();
    let claims = Claims {
        t: caller.store.tenant_id().to_string(),
        n: req.name,
        e: expires,
        x: hex::encode(nonce),
    };
    let token = signed::sign(&st.signing_key, &claims);
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::FileUploadUrl,
            target: &claims.n,
            outcome: "ok",
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadUrl {
            url: format!("{}/v1/uploads/{token}", st.cfg.base_url()),
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
    let claims = signed::verify(&st.signing_key, &token, now_ms()).map_err(|e| match e {
        TokenError::Malformed | TokenError::BadSignature | TokenError::Expired => {
            ApiError::forbidden(e.to_string())
        }
    })?;
    let tenant = warden_store::TenantId::parse(&claims.t)
        .ok_or_else(|| ApiError::forbidden("the upload URL is malformed"))?;
    match st.meta.get_tenant(&tenant).await? {
        Some(t) if !t.disabled => {}
        _ => {
            return Err(ApiError::forbidden(
                "the upload URL's tenant is gone or disabled",
            ))
        }
    }
    if !st.meta.use_upload_nonce(&claims.x, claims.e).await? {
        return Err(ApiError::forbidden("the upload URL has already been used"));
    }
    let store = st.tenant_store(tenant);
    let meta = store_upload(
        &st,
        &store,
        "upload-url",
        &claims.n,
        body.into_data_stream(),
        content_length(&headers),
    )
    .await?;
    st.audit(
        store.tenant_id(),
        Audit {
            actor: "upload-url",
            action: Action::FileUpload,
            target: meta.id.as_str(),
            outcome: "ok",
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

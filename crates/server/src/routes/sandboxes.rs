//! Sandbox lifecycle over `/v1`: create, list, get, delete, extend (the
//! use cases themselves are in `service::sandboxes`).

use crate::api::{self, CreateSandbox, Page, SetTimeout};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::audit::Action;
use crate::service::sandboxes::{create_audited, live, sandbox_id, set_expiry, MAX_TIMEOUT_SECS};
use crate::state::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use warden_store::{now_ms, SandboxFilter, SandboxState};

#[utoipa::path(
    operation_id = "create_sandbox",
    post, path = "/v1/sandboxes", tag = "sandboxes", request_body = CreateSandbox,
    responses((status = 201, body = api::Sandbox), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "`capacity`: this server runs as many sandboxes as it may, or has no file descriptors left for another (the message says which); try again later")))]
pub async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<CreateSandbox>,
) -> ApiResult<(StatusCode, Json<api::Sandbox>)> {
    let record = create_audited(&caller, &st, req).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

#[utoipa::path(
    operation_id = "list_sandboxes",
    get, path = "/v1/sandboxes", tag = "sandboxes",
    params(("state" = Option<String>, Query, description = "running | paused | stopped | timed_out | lost | failed; several as a comma list (any of them)"),
           ("label" = Option<String>, Query, description = "k=v, repeatable; all must match"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<api::Sandbox>), (status = 400, body = ErrorBody)))]
pub async fn list(caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Json<Page<api::Sandbox>>> {
    let mut filter = SandboxFilter::default();
    let mut cursor = None;
    let mut limit = 100u32;
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "state" => {
                // `state=running,paused` (or the parameter repeated): any of them.
                for one in v.split(',').map(str::trim) {
                    filter.states.push(
                        SandboxState::parse(one).ok_or_else(|| {
                            ApiError::bad_request(format!("unknown state {one:?}"))
                        })?,
                    );
                }
            }
            "label" => {
                let (lk, lv) = v
                    .split_once('=')
                    .ok_or_else(|| ApiError::bad_request("label filters are label=k=v"))?;
                filter.labels.insert(lk.into(), lv.into());
            }
            "cursor" => cursor = Some(v.into_owned()),
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .map_err(|_| ApiError::bad_request("limit must be a number"))?
                    .clamp(1, 1000)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    let page = caller
        .store
        .list_sandboxes(&filter, cursor.as_deref(), limit)
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(
    operation_id = "get_sandbox",
    get, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    responses((status = 200, body = api::Sandbox), (status = 404, body = ErrorBody)))]
pub async fn get(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<api::Sandbox>> {
    let r = caller
        .store
        .get_sandbox(&sandbox_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    Ok(Json(r.into()))
}

#[utoipa::path(
    operation_id = "delete_sandbox",
    delete, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = sandbox_id(&id)?;
    let tenant = caller.store.tenant_id();
    if st
        .sandboxes
        .destroy(
            tenant,
            &id,
            SandboxState::Stopped,
            "deleted",
            caller.actor(),
        )
        .await
        .is_some()
    {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Paused: deleted with the files it kept. Already ended: deleting is
    // idempotent; unknown (or not ours): 404.
    match caller.store.get_sandbox(&id).await? {
        Some(r) => {
            crate::service::pause::delete_paused(&st, &caller, &r).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found("sandbox")),
    }
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/timeout", tag = "sandboxes", request_body = SetTimeout,
    responses((status = 200, body = api::Sandbox), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_timeout(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<SetTimeout>,
) -> ApiResult<Json<api::Sandbox>> {
    if !(1..=MAX_TIMEOUT_SECS).contains(&req.timeout_secs) {
        return Err(ApiError::bad_request(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    let live = live(&st, &caller, &id).await?;
    let expires = now_ms() + req.timeout_secs as i64 * 1000;
    set_expiry(
        &st,
        &caller,
        &live,
        expires,
        Action::SandboxTimeoutSet,
        &format!("ok ({}s)", req.timeout_secs),
    )
    .await?;
    let r = caller
        .store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    Ok(Json(r.into()))
}

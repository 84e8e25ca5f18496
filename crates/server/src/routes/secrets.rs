//! `/v1/secrets`: the HTTP side of a tenant's secrets (`service::secrets`
//! does the work). A value is accepted once and never shown again; only
//! names and times come back.

use crate::api::time;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service;
use crate::state::Shared;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_store::SecretMeta;
use zeroize::Zeroizing;

/// `POST /v1/secrets`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// An environment variable name: `[A-Z_][A-Z0-9_]{0,63}`.
    pub name: String,
    /// 8 bytes to 64 KiB of UTF-8 without NUL. Write-only: never returned.
    pub value: String,
}

#[derive(Deserialize, IntoParams)]
pub struct CreateParams {
    /// Replace the value of an existing secret of that name (else 409).
    pub replace: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Secret {
    pub name: String,
    pub created_at: String,
    /// When the value was last replaced (= created_at if never).
    pub updated_at: String,
}

impl From<SecretMeta> for Secret {
    fn from(s: SecretMeta) -> Self {
        Secret {
            name: s.name,
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SecretList {
    pub items: Vec<Secret>,
}

/// Parses the body itself: axum's JSON rejection may quote the offending
/// input, and that input may be the value.
fn parse_body(body: &[u8]) -> ApiResult<(String, Zeroizing<String>)> {
    let req: CreateSecret = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"name\": ..., \"value\": ...}} ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    Ok((req.name, Zeroizing::new(req.value)))
}

#[utoipa::path(
    operation_id = "create_secret",
    post, path = "/v1/secrets", tag = "secrets", request_body = CreateSecret, params(CreateParams),
    responses((status = 201, body = Secret), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the name exists (use ?replace=true)"),
              (status = 503, body = ErrorBody, description = "`secrets_disabled`: the server has no secrets key")))]
pub async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Query(p): Query<CreateParams>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Secret>)> {
    service::secrets::enabled(&st)?;
    let (name, value) = parse_body(&body)?;
    let replace = p.replace.unwrap_or(false);
    let meta = service::secrets::create(&st, &caller, &name, &value, replace).await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

#[utoipa::path(
    operation_id = "list_secrets",
    get, path = "/v1/secrets", tag = "secrets",
    responses((status = 200, body = SecretList), (status = 503, body = ErrorBody)))]
pub async fn list(caller: Caller, State(st): State<Shared>) -> ApiResult<Json<SecretList>> {
    let items = service::secrets::list(&st, &caller).await?;
    Ok(Json(SecretList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    operation_id = "delete_secret",
    delete, path = "/v1/secrets/{name}", tag = "secrets",
    responses((status = 204), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    service::secrets::delete(&st, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Admin: tenants and their API keys, over HTTP (`service::tenants` does the
//! work).

use crate::api::{self, CreateKey, CreateTenant, NewKey, Page, PageParams};
use crate::auth::{full_key, Admin};
use crate::checks::{self, SetUploadPolicy, UploadPolicy};
use crate::error::{ApiResult, ErrorBody};
use crate::service::audit::{Action, Audit};
use crate::service::tenants;
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::TenantId;

pub(crate) fn tenant_id(id: &str) -> ApiResult<TenantId> {
    Ok(tenants::tenant_id(id)?)
}

#[utoipa::path(
    operation_id = "create_tenant",
    post, path = "/v1/tenants", tag = "admin", request_body = CreateTenant,
    responses((status = 201, body = api::Tenant), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create(
    _: Admin,
    State(st): State<Shared>,
    Json(req): Json<CreateTenant>,
) -> ApiResult<(StatusCode, Json<api::Tenant>)> {
    let quotas = req.quotas.unwrap_or_default().over(st.cfg.quotas.quotas());
    let t = tenants::create(&st, &req.name, quotas).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

#[utoipa::path(
    operation_id = "list_tenants",
    get, path = "/v1/tenants", tag = "admin", params(PageParams),
    responses((status = 200, body = Page<api::Tenant>)))]
pub async fn list(
    _: Admin,
    State(st): State<Shared>,
    Query(p): Query<PageParams>,
) -> ApiResult<Json<Page<api::Tenant>>> {
    let page = st.meta.list_tenants(p.cursor.as_deref(), p.limit()).await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(
    operation_id = "get_tenant",
    get, path = "/v1/tenants/{id}", tag = "admin",
    responses((status = 200, body = api::Tenant), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Tenant>> {
    Ok(Json(tenants::get(&st, &tenant_id(&id)?).await?.into()))
}

async fn set_disabled(st: &Shared, id: &str, disabled: bool) -> ApiResult<Json<api::Tenant>> {
    let t = tenants::set_disabled(st, &tenant_id(id)?, disabled).await?;
    Ok(Json(t.into()))
}

#[utoipa::path(post, path = "/v1/tenants/{id}/disable", tag = "admin",
    responses((status = 200, body = api::Tenant), (status = 404, body = ErrorBody)))]
pub async fn disable(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Tenant>> {
    set_disabled(&st, &id, true).await
}

#[utoipa::path(post, path = "/v1/tenants/{id}/enable", tag = "admin",
    responses((status = 200, body = api::Tenant), (status = 404, body = ErrorBody)))]
pub async fn enable(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<api::Tenant>> {
    set_disabled(&st, &id, false).await
}

#[derive(Deserialize, IntoParams)]
pub struct DeleteParams {
    /// Stop the tenant's running sandboxes instead of refusing.
    pub force: Option<bool>,
}

#[utoipa::path(
    operation_id = "delete_tenant",
    delete, path = "/v1/tenants/{id}", tag = "admin", params(DeleteParams),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<DeleteParams>,
) -> ApiResult<StatusCode> {
    tenants::delete(&st, &tenant_id(&id)?, p.force.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/tenants/{id}/keys", tag = "admin", request_body = CreateKey,
    responses((status = 201, body = NewKey), (status = 404, body = ErrorBody)))]
pub async fn create_key(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Option<Json<CreateKey>>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    let name = body.and_then(|b| b.0.name).unwrap_or_default();
    let (key, secret) = tenants::create_key(&st, &tenant_id(&id)?, &name).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            e2b_key: crate::e2b::control::auth::e2b_form(&full_key(&key.id, &secret)),
            key: full_key(&key.id, &secret),
            id: key.id.to_string(),
            name: key.name,
            created_at: api::time(key.created_at),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/tenants/{id}/keys", tag = "admin",
    responses((status = 200, body = Page<api::ApiKey>), (status = 404, body = ErrorBody)))]
pub async fn list_keys(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<api::ApiKey>>> {
    let keys = tenants::list_keys(&st, &tenant_id(&id)?).await?;
    Ok(Json(Page {
        items: keys.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(delete, path = "/v1/tenants/{id}/keys/{key_id}", tag = "admin",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    _: Admin,
    State(st): State<Shared>,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    tenants::revoke_key(&st, &tenant_id(&id)?, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/tenants/{id}/upload-policy", tag = "admin",
    responses((status = 200, body = UploadPolicy), (status = 404, body = ErrorBody)))]
pub async fn upload_policy(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<UploadPolicy>> {
    let id = tenant_id(&id)?;
    tenants::get(&st, &id).await?;
    Ok(Json(checks::policy(&st, &id).await?))
}

#[utoipa::path(put, path = "/v1/tenants/{id}/upload-policy", tag = "admin", request_body = SetUploadPolicy,
    responses((status = 200, body = UploadPolicy), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_upload_policy(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<SetUploadPolicy>,
) -> ApiResult<Json<UploadPolicy>> {
    let id = tenant_id(&id)?;
    tenants::get(&st, &id).await?;
    let policy = checks::set_policy(&st, &id, req).await?;
    let outcome = match policy.default {
        true => "ok (server default)".to_string(),
        false => format!("ok ({})", policy.allowed_types.join(",")),
    };
    st.audit(
        &id,
        Audit {
            actor: "admin",
            action: Action::TenantUploadPolicy,
            target: id.as_str(),
            outcome: &outcome,
        },
    )
    .await?;
    Ok(Json(policy))
}

//! Admin: tenants and their API keys.

use crate::api::{self, CreateKey, CreateTenant, NewKey, Page, PageParams};
use crate::auth::{full_key, hash_hex, new_secret, Admin};
use crate::checks::{self, SetUploadPolicy, UploadPolicy};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::audit::{Action, Audit};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::{KeyId, SandboxState, TenantId};

pub(crate) fn tenant_id(id: &str) -> ApiResult<TenantId> {
    TenantId::parse(id).ok_or_else(|| ApiError::not_found("tenant"))
}

fn check_tenant_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "tenant names are 1-128 characters with no control characters",
        ));
    }
    Ok(())
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
    check_tenant_name(&req.name)?;
    let quotas = req.quotas.unwrap_or_default().over(st.cfg.quotas.quotas());
    let t = st.meta.create_tenant(req.name.trim(), quotas).await?;
    st.audit(
        &t.id,
        Audit {
            actor: "admin",
            action: Action::TenantCreate,
            target: t.id.as_str(),
            outcome: "ok",
        },
    )
    .await?;
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
    let id = tenant_id(&id)?;
    let t = st
        .meta
        .get_tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(t.into()))
}

async fn set_disabled(st: &Shared, id: &str, disabled: bool) -> ApiResult<Json<api::Tenant>> {
    let id = tenant_id(id)?;
    if !st.meta.set_tenant_disabled(&id, disabled).await? {
        return Err(ApiError::not_found("tenant"));
    }
    let action = if disabled {
        Action::TenantDisable
    } else {
        Action::TenantEnable
    };
    st.audit(
        &id,
        Audit {
            actor: "admin",
            action,
            target: id.as_str(),
            outcome: "ok",
        },
    )
    .await?;
    if disabled {
        // A disabled tenant's sandboxes stop now, not at their timeout.
        for sb in st.sandboxes.running_of(&id) {
            st.sandboxes
                .destroy(&id, &sb, SandboxState::Stopped, "tenant disabled", "admin")
                .await;
        }
    }
    let t = st
        .meta
        .get_tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
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
    let id = tenant_id(&id)?;
    if st.meta.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    let running = st.sandboxes.running_of(&id);
    if !running.is_empty() && !p.force.unwrap_or(false) {
        return Err(ApiError::conflict(format!(
            "the tenant has {} running sandbox(es); stop them or delete with ?force=true",
            running.len()
        )));
    }
    for sb in running {
        st.sandboxes
            .destroy(&id, &sb, SandboxState::Stopped, "tenant deleted", "admin")
            .await;
    }
    // Rows first: once they are gone no request can reach the objects.
    st.meta.delete_tenant(&id).await?;
    let removed = st.tenant_store(id.clone()).objects().delete_all().await?;
    st.audit(
        &id,
        Audit {
            actor: "admin",
            action: Action::TenantDelete,
            target: id.as_str(),
            outcome: &format!("ok ({removed} objects removed)"),
        },
    )
    .await?;
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
    let id = tenant_id(&id)?;
    if st.meta.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    let name = body.and_then(|b| b.0.name).unwrap_or_default();
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "key names are up to 128 printable characters",
        ));
    }
    let secret = new_secret();
    let key = st.meta.create_key(&id, &name, &hash_hex(&secret)).await?;
    st.audit(
        &id,
        Audit {
            actor: "admin",
            action: Action::KeyCreate,
            target: key.id.as_str(),
            outcome: "ok",
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
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
    let id = tenant_id(&id)?;
    if st.meta.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    let keys = st.meta.list_keys(&id).await?;
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
    let id = tenant_id(&id)?;
    let key = KeyId::parse(&key_id).ok_or_else(|| ApiError::not_found("key"))?;
    if !st.meta.revoke_key(&id, &key).await? {
        return Err(ApiError::not_found("key"));
    }
    st.audit(
        &id,
        Audit {
            actor: "admin",
            action: Action::KeyRevoke,
            target: key.as_str(),
            outcome: "ok",
        },
    )
    .await?;
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
    if st.meta.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
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
    if st.meta.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
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

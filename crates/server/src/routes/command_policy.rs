//! Command policy: set by the admin per tenant (as the upload policy is),
//! readable by the tenant itself. Enforcement is in `crate::command_policy`.

use crate::auth::{Admin, Caller};
use crate::command_policy::{self, CommandPolicy, CommandRules};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::audit::{Action, Audit};
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::Json;
use warden_store::TenantId;

async fn existing(st: &Shared, id: &str) -> ApiResult<TenantId> {
    let id = super::tenants::tenant_id(id)?;
    if st.meta.get_tenant(&id).await?.is_none() {
        return Err(ApiError::not_found("tenant"));
    }
    Ok(id)
}

#[utoipa::path(
    operation_id = "get_command_policy",
    get, path = "/v1/tenants/{id}/command-policy", tag = "admin",
    responses((status = 200, body = CommandPolicy), (status = 404, body = ErrorBody)))]
pub async fn get(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<CommandPolicy>> {
    let id = existing(&st, &id).await?;
    Ok(Json(command_policy::policy(&st, &id).await?))
}

#[utoipa::path(put, path = "/v1/tenants/{id}/command-policy", tag = "admin", request_body = CommandRules,
    responses((status = 200, body = CommandPolicy),
              (status = 400, body = ErrorBody, description = "a bad glob, too many or too long patterns, or `hook: true` on a server without a hook"),
              (status = 404, body = ErrorBody)))]
pub async fn set(
    _: Admin,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<CommandRules>,
) -> ApiResult<Json<CommandPolicy>> {
    let id = existing(&st, &id).await?;
    let p = command_policy::set_policy(&st, &id, req).await?;
    let outcome = format!(
        "ok ({} deny, {} allow, hook {})",
        p.deny.len(),
        p.allow.len(),
        if p.hook { "on" } else { "off" }
    );
    st.audit(
        &id,
        Audit {
            actor: "admin",
            action: Action::TenantCommandPolicy,
            target: id.as_str(),
            outcome: &outcome,
        },
    )
    .await?;
    Ok(Json(p))
}

#[utoipa::path(get, path = "/v1/command-policy", tag = "sandboxes",
    responses((status = 200, body = CommandPolicy, description = "the caller's own policy (set by the admin)")))]
pub async fn own(caller: Caller, State(st): State<Shared>) -> ApiResult<Json<CommandPolicy>> {
    Ok(Json(
        command_policy::policy(&st, caller.store.tenant_id()).await?,
    ))
}

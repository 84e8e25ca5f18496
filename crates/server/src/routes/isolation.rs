//! Which isolation tiers this server offers.

use crate::api::IsolationTier;
use crate::auth::AnyCaller;
use crate::error::{ApiError, ApiResult};
use crate::state::Shared;
use axum::extract::State;
use axum::Json;

#[utoipa::path(
    operation_id = "list_isolation_tiers",
    get, path = "/v1/isolation", tag = "sandboxes",
    responses((status = 200, body = Vec<IsolationTier>,
        description = "every tier, whether this server can run sandboxes on it, and what on (or why not); a tenant key or the admin token")))]
pub async fn list(
    _caller: AnyCaller,
    State(st): State<Shared>,
) -> ApiResult<Json<Vec<IsolationTier>>> {
    // Opens a tier not checked yet, so the answer is never "don't know".
    let manager = st.sandboxes.clone();
    let statuses = tokio::task::spawn_blocking(move || manager.probe_tiers())
        .await
        .map_err(|e| ApiError::internal("checking the isolation tiers", e))?;
    Ok(Json(
        statuses
            .into_iter()
            .map(|s| IsolationTier {
                name: s.isolation.name().into(),
                available: s.available,
                detail: s.detail,
            })
            .collect(),
    ))
}

//! Egress: a sandbox's log and rules, a review's log.

use crate::api::{self, EgressPage, Network};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::sandboxes::{live, sandbox_id};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::{SandboxFilter, SandboxId};

#[derive(Deserialize, IntoParams)]
pub struct EgressParams {
    /// Entries after this `seq`.
    pub after: Option<i64>,
    /// Default 100, at most 1000.
    pub limit: Option<u32>,
}

fn page(mut items: Vec<api::EgressEntry>, limit: u32) -> EgressPage {
    items.sort_by_key(|e| e.seq);
    items.truncate(limit as usize);
    let next_after = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    EgressPage { items, next_after }
}

async fn entries(
    st: &Shared,
    caller: &Caller,
    sandboxes: &[SandboxId],
    p: &EgressParams,
) -> ApiResult<EgressPage> {
    st.sandboxes.egress.flush().await;
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let mut items = Vec::new();
    for sb in sandboxes {
        for e in caller.store.egress(sb, p.after, limit).await? {
            items.push(api::EgressEntry::new(sb, e));
        }
    }
    Ok(page(items, limit))
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}/egress", tag = "egress", params(EgressParams),
    responses((status = 200, body = EgressPage), (status = 404, body = ErrorBody)))]
pub async fn sandbox_log(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<EgressParams>,
) -> ApiResult<Json<EgressPage>> {
    let id = sandbox_id(&id)?;
    caller
        .store
        .get_sandbox(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    Ok(Json(entries(&st, &caller, &[id], &p).await?))
}

#[utoipa::path(get, path = "/v1/reviews/{id}/egress", tag = "egress", params(EgressParams),
    responses((status = 200, body = EgressPage), (status = 404, body = ErrorBody)))]
pub async fn review_log(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<EgressParams>,
) -> ApiResult<Json<EgressPage>> {
    let review = crate::service::reviews::find(&st, &caller, &id).await?;
    // Every attempt of the job ran in a sandbox labelled with its id.
    let filter = SandboxFilter {
        states: Vec::new(),
        labels: [("review".to_string(), review.id.to_string())].into(),
        newest_first: false,
    };
    let runs = caller.store.list_sandboxes(&filter, None, 1000).await?;
    let ids: Vec<SandboxId> = runs.items.into_iter().map(|s| s.id).collect();
    Ok(Json(entries(&st, &caller, &ids, &p).await?))
}

#[utoipa::path(put, path = "/v1/sandboxes/{id}/network", tag = "egress", request_body = Network,
    responses((status = 200, body = api::Sandbox), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_network(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<Network>,
) -> ApiResult<Json<api::Sandbox>> {
    let live = live(&st, &caller, &id).await?;
    let rules = match req.to_mode() {
        Ok(warden_spec::NetworkMode::Allowlist { rules }) => Ok(rules),
        Ok(warden_spec::NetworkMode::None) => Err(crate::service::Error::invalid(
            "a running sandbox keeps its egress proxy: to cut it off, send \
             {\"mode\": \"allowlist\", \"rules\": []}",
        )),
        Err(e) => Err(e),
    };
    crate::service::egress::set_rules(&st, &caller, &live, rules).await?;
    let r = caller
        .store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    Ok(Json(r.into()))
}

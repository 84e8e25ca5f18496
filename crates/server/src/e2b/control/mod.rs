//! E2B's REST control API (see the module docs of `e2b`): the sandbox
//! lifecycle the SDKs drive (create, list, get, kill, timeout, connect,
//! refresh, network, metrics, logs) on Warden's own sandboxes, quotas and
//! audit, authenticated by a tenant API key in `X-API-Key`. What Warden
//! cannot do (memory snapshots and pauses, forks, template builds...) answers 400 with
//! the reason. Errors are E2B's shape: `{"code": <status>, "message"}`.

pub(crate) mod auth;
pub(crate) mod error;
mod fork;
mod list;
mod logs;
mod metrics;
mod models;
mod network;
mod pause;
mod sandboxes;
mod snapshots;
mod unsupported;
mod view;
mod volumes;

use crate::state::Shared;
use axum::routing::{any, get, post, put};
use axum::Router;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/sandboxes", post(sandboxes::create).get(list::list_v1))
        .route("/v2/sandboxes", post(sandboxes::create).get(list::list_v2))
        .route("/sandboxes/metrics", get(metrics::many))
        .route(
            "/sandboxes/{id}",
            get(sandboxes::get).delete(sandboxes::kill),
        )
        .route("/sandboxes/{id}/timeout", post(sandboxes::timeout))
        .route("/sandboxes/{id}/connect", post(sandboxes::connect))
        .route("/v2/sandboxes/{id}/connect", post(sandboxes::connect))
        .route("/sandboxes/{id}/refreshes", post(sandboxes::refresh))
        .route("/sandboxes/{id}/network", put(network::update))
        .route("/sandboxes/{id}/metrics", get(metrics::sandbox))
        .route("/sandboxes/{id}/logs", get(logs::v1))
        .route("/v2/sandboxes/{id}/logs", get(logs::v2))
        .route("/sandboxes/{id}/pause", post(pause::pause))
        .route("/sandboxes/{id}/resume", post(pause::resume))
        .route("/sandboxes/{id}/snapshots", post(snapshots::create))
        .route("/sandboxes/{id}/fork", post(fork::fork))
        .route("/snapshots", get(snapshots::list))
        .route("/templates", any(unsupported::templates))
        .route("/templates/{*rest}", any(snapshots::templates))
        .route("/v2/templates", any(unsupported::templates))
        .route("/v2/templates/{*rest}", any(unsupported::templates))
        .route("/v3/templates", any(unsupported::templates))
        .route("/v3/templates/{*rest}", any(unsupported::templates))
        .route("/default-templates", any(unsupported::templates))
        .route("/volumes", post(volumes::create).get(volumes::list))
        .route("/volumes/{id}", get(volumes::get).delete(volumes::delete))
        .route("/secrets", any(unsupported::secrets))
        .route("/secrets/{*rest}", any(unsupported::secrets))
}

//! Liveness, readiness, metrics, and the OpenAPI document.

use crate::state::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Below this much free space on the data disk the server says it is not
/// ready: every write (database, uploads, audit) is about to fail with 507.
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// Free bytes (for an unprivileged writer) on the filesystem of `dir`.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Ready when the database answers, the data disk has room and the server
/// is not draining.
pub async fn readyz(State(st): State<Shared>) -> impl IntoResponse {
    if st.draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "draining"})),
        );
    }
    if let Some(free) = free_bytes(&st.cfg.data_dir).filter(|&f| f < MIN_FREE_BYTES) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "storage full",
                "error": format!(
                    "the data disk has {free} bytes free (under {MIN_FREE_BYTES}); writes fail with 507"
                ),
            })),
        );
    }
    match st.meta.get_setting("schema").await {
        Ok(_) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ready", "sandboxes": st.sandboxes.running_count()})),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "database unavailable", "error": e.to_string()})),
        ),
    }
}

pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(),
    )
}

//! Liveness, readiness, metrics, and the OpenAPI document.

use crate::state::Shared;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers and the server is not draining.
pub async fn readyz(State(st): State<Shared>) -> impl IntoResponse {
    if st.draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "draining"})),
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

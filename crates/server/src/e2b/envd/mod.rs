//! envd, the in-sandbox API of E2B (see the module docs of `e2b`).

use crate::state::Shared;
use axum::Router;

pub fn routes() -> Router<Shared> {
    Router::new()
}

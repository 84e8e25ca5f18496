//! The web console at `/console`: a page, a script and a style sheet,
//! embedded in the binary (no build step, nothing fetched from elsewhere).
//! The page is a client of `/v1` like any other, with the token the user
//! signs in with kept in the tab's session storage, never a cookie, so the
//! console adds no ambient authority to the server's origin.
//!
//! Everything it serves carries a strict content security policy: scripts
//! only from `/console/app.js` (no inline script, no `eval`), requests
//! only to this origin, no plugins, no framing of the console by other
//! sites. A review's HTML report is shown in an `<iframe sandbox="">`
//! built from its bytes: an opaque origin with scripts off, which also
//! inherits this policy, so a report's `<script>` neither runs nor could
//! reach the console's storage or call the API (tested in Chromium).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Styles may be inline so that reports (shown under this policy) keep
/// their looks; scripts may not.
pub const POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; form-action 'self'; \
base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/console",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

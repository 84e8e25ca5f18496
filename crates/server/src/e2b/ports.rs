//! Every port of an E2B sandbox but envd's: what `get_host(port)` names
//! (`<port>-<id>.<domain>`) or the SDKs reach with `E2b-Sandbox-Id` and
//! `E2b-Sandbox-Port` (the code interpreter on 49999, a web server an
//! agent started). Forwarded as HTTP (WebSocket included) through the
//! sandbox's init to its loopback (`service::ports`, `crate::proxy`).
//!
//! Who may: anyone, for a sandbox created with public traffic (E2B's
//! default); otherwise a request carrying the sandbox's traffic token
//! (`e2b-traffic-access-token`) or its envd access token
//! (`X-Access-Token`). Refusals and failures answer as E2B's proxy does
//! (JSON with `message`, `sandboxId`, `code`), with the words the SDKs
//! look for: "was not found" (the sandbox is gone) and "port is not open".
//! A sandbox paused with its memory and made with auto-resume is resumed
//! by a request that may reach its ports (its processes, the server on
//! the port among them, go on); one paused with only its files is not
//! (nothing would listen: its processes ended).

use crate::e2b::token;
use crate::proxy;
use crate::service::ports;
use crate::state::Shared;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use warden_store::SandboxId;

fn answer(status: StatusCode, id: &str, port: u16, message: String) -> Response {
    let body = json!({
        "message": message,
        "sandboxId": id,
        "port": port,
        "code": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("")
}

/// Whether the request may reach the ports of sandbox `id`, which are
/// not public.
fn tokened(key: &[u8], id: &SandboxId, headers: &HeaderMap) -> bool {
    token::verify_traffic(key, id, header(headers, "e2b-traffic-access-token"))
        || token::verify(key, id, header(headers, "x-access-token"))
}

/// The request's target on the sandbox's server: its path and query.
fn target(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
}

/// Forwards `req` to `port` of the sandbox named `raw_id`.
pub async fn forward(st: &Shared, raw_id: &str, port: u16, req: Request) -> Response {
    let gone = || {
        answer(
            StatusCode::BAD_GATEWAY,
            raw_id,
            port,
            format!("The sandbox {raw_id} was not found"),
        )
    };
    let Some(id) = SandboxId::parse(raw_id) else {
        return gone();
    };
    let live = match st.sandboxes.get_unscoped(&id) {
        Some(live) => live,
        // Paused with its memory and made to resume on traffic: resumed
        // first, for a request that may reach its ports.
        None => {
            let tokened = tokened(&st.signing_key, &id, req.headers());
            match crate::service::pause::wake_for_port(st, &id, tokened).await {
                Some(live) => live,
                None => return gone(),
            }
        }
    };
    if !live.public_ports && !tokened(&st.signing_key, &id, req.headers()) {
        // The same answer for a wrong token and for none: the sandbox's
        // ports are not public, and this request may not reach them.
        return answer(
            StatusCode::FORBIDDEN,
            raw_id,
            port,
            "the sandbox's traffic is not public: send its trafficAccessToken in \
             e2b-traffic-access-token"
                .into(),
        );
    }
    let target = target(&req);
    let conn = match ports::open(st, &live, port).await {
        Ok(c) => c,
        Err(e) if ports::is_not_open(&e) => {
            return answer(
                StatusCode::BAD_GATEWAY,
                raw_id,
                port,
                format!("The sandbox {raw_id} is running but port is not open: nothing listens on port {port}"),
            )
        }
        Err(e) if ports::is_gone(&e) => return gone(),
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            return answer(e.status, raw_id, port, e.message);
        }
    };
    match proxy::forward(conn, req, &target).await {
        Ok(r) => r,
        Err(e) => answer(StatusCode::BAD_GATEWAY, raw_id, port, e.to_string()),
    }
}

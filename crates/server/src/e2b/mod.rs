//! The E2B-compatible front door, so agent code written for the `e2b` SDK
//! runs against one `warden serve` unchanged (`E2B_API_URL` and
//! `E2B_SANDBOX_URL` both point at the server).
//!
//! - `control`: E2B's REST control API (`/sandboxes`, `/v2/sandboxes`...),
//!   authenticated by `X-API-Key` = a tenant API key, mapped onto the same
//!   sandboxes, quotas and audit as `/v1`.
//! - `envd`: the in-sandbox API (Connect RPC `process.Process` and
//!   `filesystem.Filesystem`, `/files`, `/health`), reached with the
//!   `E2b-Sandbox-Id` header or a `<port>-<sandboxID>.<domain>` host name,
//!   authenticated by the per-sandbox access token (`token`).
//!
//! - `ports`: every other port of a sandbox (`get_host(port)`, the code
//!   interpreter's 49999), forwarded to whatever listens there.
//!
//! None of them touches the runtime directly: all go through the manager
//! and the init protocol client like the native API.

pub mod control;
pub mod envd;
mod ports;
pub mod token;

use axum::http::HeaderMap;

/// The envd version the control API reports for every sandbox: the SDKs
/// gate features on it, so it names the newest envd whose behaviour the
/// `envd` module provides: default users (0.4), stdin and close-stdin,
/// octet-stream uploads (0.5.7), file metadata (0.6.2), entries in watch
/// events (0.6.3), the network-mounts watch flag (0.6.4; Warden has no
/// network mounts, so it changes nothing).
pub const ENVD_VERSION: &str = "0.6.4";

/// The port envd listens on inside an E2B sandbox; the SDK names it in
/// `E2b-Sandbox-Port` and in sandbox host names.
pub const ENVD_PORT: u16 = 49983;

/// Which sandbox (and port) an in-sandbox request is for: the
/// `E2b-Sandbox-Id` header (with `E2b-Sandbox-Port`), else a host name
/// `<port>-<sandboxID>.<domain>`. None for requests meant for the server
/// itself.
pub fn envd_target(headers: &HeaderMap) -> Option<(String, u16)> {
    if let Some(id) = headers.get("e2b-sandbox-id").and_then(|v| v.to_str().ok()) {
        let port = headers
            .get("e2b-sandbox-port")
            .and_then(|v| v.to_str().ok())
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(ENVD_PORT);
        return Some((id.trim().to_string(), port));
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())?;
    let first = host.split('.').next()?;
    // A bare host (no domain) is the server's own name, never a sandbox's.
    if first.len() == host.len() {
        return None;
    }
    let (port, id) = first.split_once('-')?;
    let port: u16 = port.parse().ok()?;
    (!id.is_empty()).then(|| (id.to_string(), port))
}

/// Where requests addressed to a sandbox go: its envd's router, and the
/// server's state for its other ports.
#[derive(Clone)]
pub struct Diverted {
    pub envd: axum::Router,
    pub app: crate::state::Shared,
}

/// Sends requests for a sandbox's envd to the envd router, for its other
/// ports to whatever listens there, everything else on to the server's
/// own routes.
pub async fn divert(
    axum::extract::State(to): axum::extract::State<Diverted>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tower::ServiceExt;
    let to_envd = match envd_target(req.headers()) {
        Some((id, port)) if port != ENVD_PORT => {
            return ports::forward(&to.app, &id, port, req).await
        }
        Some(_) => {
            // A paused sandbox made to resume on traffic resumes first.
            envd::access::wake(&to.app, req.headers()).await;
            true
        }
        // A signed file URL made against E2B_SANDBOX_URL names no sandbox:
        // envd finds it from the signature.
        None => is_signed_file_url(req.uri()),
    };
    if !to_envd {
        return next.run(req).await;
    }
    match to.envd.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// `/files?...&signature=...`: a download or upload URL the SDK signed.
fn is_signed_file_url(uri: &axum::http::Uri) -> bool {
    uri.path() == "/files"
        && uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("signature=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn targets_come_from_the_header_or_the_host_name() {
        assert_eq!(
            envd_target(&headers(&[("e2b-sandbox-id", "sbx_abc")])),
            Some(("sbx_abc".into(), ENVD_PORT))
        );
        assert_eq!(
            envd_target(&headers(&[
                ("e2b-sandbox-id", "sbx_abc"),
                ("e2b-sandbox-port", "8080")
            ])),
            Some(("sbx_abc".into(), 8080))
        );
        assert_eq!(
            envd_target(&headers(&[("host", "49983-sbx_abc.warden.example:443")])),
            Some(("sbx_abc".into(), 49983))
        );
        assert_eq!(envd_target(&headers(&[("host", "127.0.0.1:3000")])), None);
        assert_eq!(envd_target(&headers(&[("host", "localhost")])), None);
        assert_eq!(envd_target(&headers(&[("host", "api.example.com")])), None);
        assert_eq!(envd_target(&headers(&[])), None);
    }
}

//! HTTP to a server inside a sandbox, over a connection to its port
//! (`service::ports`): one HTTP/1.1 exchange per connection, the answer
//! streamed back as it comes, and a protocol upgrade (WebSocket) spliced
//! through both ways once the sandbox's server agrees to it.

use crate::service::ports::PortConnection;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::Response;
use hyper_util::rt::TokioIo;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the sandbox's server on port {port} did not answer HTTP: {source}")]
    Exchange { port: u16, source: hyper::Error },
    #[error("bad request target: {0}")]
    Target(String),
}

/// Headers that belong to one hop (RFC 9110 7.6.1), never passed on.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Credentials meant for Warden, never for the sandbox's server: the
/// tenant's API key, the envd access token, the traffic token, and the
/// E2B routing headers.
const WARDENS_OWN: [&str; 6] = [
    "authorization",
    "x-api-key",
    "x-access-token",
    "e2b-traffic-access-token",
    "e2b-sandbox-id",
    "e2b-sandbox-port",
];

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// The headers passed on: all but hop-by-hop ones (and those the
/// `Connection` header names) and Warden's own; `Upgrade` and
/// `Connection: upgrade` again when an upgrade is asked for.
fn forwarded(headers: &HeaderMap, upgrade: bool) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        let name = k.as_str();
        if HOP_BY_HOP.contains(k)
            || k == header::UPGRADE
            || WARDENS_OWN.contains(&name)
            || named.iter().any(|n| n == name)
        {
            continue;
        }
        out.append(k.clone(), v.clone());
    }
    if upgrade {
        if let Some(u) = headers.get(header::UPGRADE) {
            out.insert(header::UPGRADE, u.clone());
            out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    out
}

/// Sends `req` to the server at the other end of `conn` as `target`
/// (path and query) and answers what it answers. The connection lives as
/// long as the answer's body (or the upgraded stream) does.
pub async fn forward(
    conn: PortConnection,
    mut req: Request,
    target: &str,
) -> Result<Response, ProxyError> {
    let port = conn.port;
    let uri: Uri = target
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| ProxyError::Target(e.to_string()))?;
    let upgrade = wants_upgrade(req.headers());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut out = hyper::Request::new(body);
    *out.method_mut() = parts.method;
    *out.uri_mut() = uri;
    *out.version_mut() = Version::HTTP_11;
    *out.headers_mut() = forwarded(&parts.headers, upgrade);
    let PortConnection {
        stream, charges, ..
    } = conn;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ProxyError::Exchange { port, source })?;
    // Held by the connection's task and by an upgraded stream's: given
    // back when both have ended.
    let charges = std::sync::Arc::new(charges);
    let held = charges.clone();
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
        drop(held);
    });
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|source| ProxyError::Exchange { port, source })?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = client_side {
            let sandbox_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(a), Ok(b)) = (client_side.await, sandbox_side.await) {
                    let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
                drop(charges);
            });
        }
    }
    let (mut parts, body) = resp.into_parts();
    let upgraded = parts.status == StatusCode::SWITCHING_PROTOCOLS;
    parts.headers = forwarded(&parts.headers, upgraded);
    Ok(Response::from_parts(parts, Body::new(body)))
}

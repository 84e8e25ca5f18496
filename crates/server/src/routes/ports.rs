//! `/v1/sandboxes/{id}/ports/{port}/...`: HTTP (and WebSocket) to a server
//! the sandbox runs on that port, for the tenant's own clients. The
//! sandbox's loopback is reached through its init (`service::ports`), so
//! this works whatever network the sandbox was given, none included.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::proxy::{self, ProxyError};
use crate::service::ports;
use crate::service::sandboxes::live;
use crate::state::Shared;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

/// The request's target inside the sandbox: what follows
/// `/v1/sandboxes/{id}/ports/{port}` in the raw path (still
/// percent-encoded, as the client sent it), and the query.
fn target(uri: &axum::http::Uri) -> String {
    let rest: Vec<&str> = uri.path().split('/').skip(6).collect();
    let mut t = format!("/{}", rest.join("/"));
    if let Some(q) = uri.query() {
        t.push('?');
        t.push_str(q);
    }
    t
}

/// The port from the raw path (axum's `Path` would need the wildcard's
/// name, and the root of a port has none).
fn port_of(uri: &axum::http::Uri) -> ApiResult<(String, u16)> {
    let mut parts = uri.path().split('/').skip(3);
    let id = parts.next().unwrap_or_default().to_string();
    let port = parts
        .nth(1)
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| ApiError::bad_request("port must be 1 to 65535"))?;
    Ok((id, ports::check_port(port)?))
}

pub fn proxy_error(e: ProxyError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", e.to_string())
}

/// Any method is forwarded (this document can name only one): the path
/// after `/ports/{port}` and the query go to the sandbox's server as they
/// are; the caller's API key does not. A WebSocket upgrade is passed
/// through. 502 `port_not_open` when nothing listens on the port.
#[utoipa::path(
    get, path = "/v1/sandboxes/{id}/ports/{port}/{path}", tag = "sandbox ports",
    params(
        ("id" = String, Path, description = "the sandbox"),
        ("port" = u16, Path, description = "a port the sandbox listens on (any address)"),
        ("path" = String, Path, description = "the path on the sandbox's server (may hold slashes)"),
    ),
    responses(
        (status = 200, description = "whatever the sandbox's server answers"),
        (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many open connections (port_connections_tenant)"),
        (status = 502, body = ErrorBody, description = "port_not_open: nothing listens there; bad_gateway: it did not answer HTTP"),
    ))]
pub async fn forward(
    caller: Caller,
    State(st): State<Shared>,
    req: Request,
) -> ApiResult<Response> {
    let (id, port) = port_of(req.uri())?;
    let live = live(&st, &caller, &id).await?;
    let conn = ports::open(&st, &live, port).await?;
    let target = target(req.uri());
    proxy::forward(conn, req, &target)
        .await
        .map_err(proxy_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_the_rest_of_the_raw_path_and_the_query() {
        let uri: axum::http::Uri = "/v1/sandboxes/sbx_1/ports/8000/a/b%20c?x=1&y"
            .parse()
            .unwrap();
        assert_eq!(target(&uri), "/a/b%20c?x=1&y");
        assert_eq!(port_of(&uri).unwrap(), ("sbx_1".to_string(), 8000));
        let root: axum::http::Uri = "/v1/sandboxes/sbx_1/ports/8000".parse().unwrap();
        assert_eq!(target(&root), "/");
        let slash: axum::http::Uri = "/v1/sandboxes/sbx_1/ports/8000/".parse().unwrap();
        assert_eq!(target(&slash), "/");
        for bad in [
            "/v1/sandboxes/sbx_1/ports/0/",
            "/v1/sandboxes/sbx_1/ports/x/",
        ] {
            let uri: axum::http::Uri = bad.parse().unwrap();
            assert!(port_of(&uri).is_err(), "{bad}");
        }
    }
}

//! Warden's own requests to a sandbox's code interpreter (for `/v1`'s
//! `/code` routes): one HTTP/1.1 exchange over a connection to its port,
//! charged like any other (`service::ports`).

use super::{ensure, PORT};
use crate::manager::Live;
use crate::service::ports::{self, PortConnection};
use crate::service::{Error, Result};
use crate::state::AppState;
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// An answer of the interpreter, and the connection's charges (kept for as
/// long as its body is read).
pub struct Answer {
    pub status: StatusCode,
    pub body: Incoming,
    pub charges: ports::Charges,
}

/// Sends `method path` (with a JSON `body`) to `live`'s interpreter,
/// starting the interpreter first if it is not running yet.
pub async fn call(
    st: &AppState,
    live: &Arc<Live>,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<Answer> {
    ensure(live).await?;
    let PortConnection {
        stream, charges, ..
    } = ports::open(st, live, PORT).await?;
    let broken = |e: hyper::Error| {
        Error::internal(
            "talking to the code interpreter",
            format!("port {PORT}: {e}"),
        )
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(broken)?;
    tokio::spawn(connection);
    let bytes = match &body {
        Some(v) => Bytes::from(serde_json::to_vec(v).map_err(|e| Error::internal("encoding", e))?),
        None => Bytes::new(),
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(bytes))
        .map_err(|e| Error::internal("building a request", e))?;
    let resp = sender.send_request(req).await.map_err(broken)?;
    Ok(Answer {
        status: resp.status(),
        body: resp.into_body(),
        charges,
    })
}

/// The whole body of a small answer (a context, a list of them, an error),
/// at most `limit` bytes.
pub async fn small_body(body: Incoming, limit: usize) -> Result<Bytes> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| Error::internal("reading the code interpreter's answer", e))?;
    Ok(collected.to_bytes())
}

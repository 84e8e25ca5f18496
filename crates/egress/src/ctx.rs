//! What the handling of every proxied request shares: the proxy's state
//! (its rules, where its events go, its cancellation), dialling an allowed
//! destination, the event a request starts as, and the proxy's own answers.
//! The accept loop (`proxy.rs`), CONNECT tunnels (`tunnel.rs`) and plain
//! HTTP (`upstream.rs`) all build on it.

use crate::event::{now_ms, EgressEvent, EgressSink, Outcome};
use crate::policy::{Deny, Policy};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use warden_spec::EgressRule;

/// Connecting to the destination.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

pub(crate) struct Ctx {
    policy: RwLock<Policy>,
    sink: Arc<dyn EgressSink>,
    pub(crate) cancel: CancellationToken,
}

impl Ctx {
    pub(crate) fn new(policy: Policy, sink: Arc<dyn EgressSink>) -> Ctx {
        Ctx {
            policy: RwLock::new(policy),
            sink,
            cancel: CancellationToken::new(),
        }
    }

    /// Replaces the rules; connections opened from now on are judged by
    /// them.
    pub(crate) fn set_rules(&self, rules: Vec<EgressRule>) {
        self.policy.write().unwrap_or_else(|e| e.into_inner()).rules = rules;
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn record(&self, event: EgressEvent) {
        if event.outcome != Outcome::Allowed {
            tracing::debug!(host = %event.host, port = event.port, reason = ?event.reason, "egress refused");
        }
        self.sink.record(event)
    }

    /// Records a refusal and builds the answer the client sees.
    pub(crate) fn refuse(
        &self,
        mut ev: EgressEvent,
        deny: Deny,
        status: StatusCode,
    ) -> Response<Body> {
        ev.outcome = if status == StatusCode::BAD_GATEWAY {
            Outcome::Failed
        } else {
            Outcome::Denied
        };
        ev.reason = Some(deny.code.to_string());
        ev.detail = Some(deny.detail.clone());
        ev.duration_ms = now_ms().saturating_sub(ev.at_ms);
        self.record(ev);
        text(status, deny.code, &deny.detail)
    }
}

/// Connects to an allowed host: the operator's override or the host's own
/// (public) address, exactly the one that was checked, recorded in `ev`.
/// On failure, the refusal and the status the client gets.
pub(crate) async fn dial(
    policy: &Policy,
    host: &str,
    port: u16,
    ev: &mut EgressEvent,
) -> Result<tokio::net::TcpStream, (Deny, StatusCode)> {
    let addr = match policy.address(host, port).await {
        Ok(a) => a,
        Err(d) if d.code == "resolve_failed" => return Err((d, StatusCode::BAD_GATEWAY)),
        Err(d) => return Err((d, StatusCode::FORBIDDEN)),
    };
    ev.addr = Some(addr.to_string());
    let failed = |why: String| {
        let d = Deny::new("connect_failed", format!("connecting to {addr}: {why}"));
        (d, StatusCode::BAD_GATEWAY)
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// An event for a request about to be judged.
pub(crate) fn event(method: &str, host: &str, port: u16) -> EgressEvent {
    EgressEvent {
        at_ms: now_ms(),
        method: method.to_string(),
        host: warden_spec::normalise_host(host),
        port,
        addr: None,
        outcome: Outcome::Denied,
        rule: None,
        reason: None,
        detail: None,
        bytes_up: 0,
        bytes_down: 0,
        duration_ms: 0,
    }
}

pub(crate) fn text(status: StatusCode, code: &str, detail: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("warden egress: {detail}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-warden-egress", v);
    }
    resp
}

pub(crate) fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

//! The proxy server for one sandbox: accept loop, per-connection HTTP/1
//! (hyper), and dispatch to CONNECT tunnels or plain-HTTP forwarding.

use crate::event::{now_ms, EgressEvent, EgressSink, Outcome};
use crate::policy::{Deny, Policy};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use warden_spec::EgressRule;

/// Connections one sandbox may have open through the proxy at once; more
/// wait in the listen backlog (the host's descriptors are not the
/// sandbox's to spend).
const MAX_CONNECTIONS: usize = 256;
/// A client that has not sent its request head by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting to the destination.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

/// A running proxy. Dropping it stops it and ends every connection through it.
pub struct Egress {
    ctx: Arc<Ctx>,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) struct Ctx {
    policy: RwLock<Policy>,
    sink: Arc<dyn EgressSink>,
    pub(crate) cancel: CancellationToken,
}

impl Egress {
    /// Serves `listener` (normally the one the runtime opened inside the
    /// sandbox) on the current tokio runtime.
    pub fn start(
        listener: std::net::TcpListener,
        policy: Policy,
        sink: Arc<dyn EgressSink>,
    ) -> std::io::Result<Egress> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let ctx = Arc::new(Ctx {
            policy: RwLock::new(policy),
            sink,
            cancel: CancellationToken::new(),
        });
        let task = tokio::spawn(accept_loop(listener, ctx.clone()));
        Ok(Egress { ctx, task })
    }

    /// Replaces the rules; connections opened from now on are judged by them.
    pub fn set_rules(&self, rules: Vec<EgressRule>) {
        self.ctx
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .rules = rules;
    }

    pub fn rules(&self) -> Vec<EgressRule> {
        self.ctx.policy().rules
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.ctx.cancel.cancel();
        self.task.abort();
    }
}

impl Ctx {
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

async fn accept_loop(listener: tokio::net::TcpListener, ctx: Arc<Ctx>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let ctx2 = ctx.clone();
                let cancel = ctx.cancel.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = connection(stream, ctx2, permit) => {}
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("egress proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, ctx: Arc<Ctx>, permit: OwnedSemaphorePermit) {
    let permit = Arc::new(permit);
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let ctx = ctx.clone();
        let permit = permit.clone();
        async move { Ok::<_, std::convert::Infallible>(route(req, ctx, permit).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
}

async fn route(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Body> {
    let started = Instant::now();
    if req.method() == http::Method::CONNECT {
        crate::tunnel::connect(req, ctx, permit, started).await
    } else if req.uri().scheme().is_some() {
        crate::upstream::forward(req, ctx).await
    } else {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let ev = event(req.method().as_str(), &host, 0);
        ctx.refuse(
            ev,
            Deny::new(
                "not_proxy_request",
                "this is an HTTP proxy: send CONNECT or an absolute-form request (http://host/path)",
            ),
            StatusCode::BAD_REQUEST,
        )
    }
}

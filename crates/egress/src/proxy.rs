//! The proxy server for one sandbox: accept loop, per-connection HTTP/1
//! (hyper), and dispatch to CONNECT tunnels or plain-HTTP forwarding.

use crate::ctx::{event, Body, Ctx};
use crate::event::EgressSink;
use crate::policy::{Deny, Policy};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warden_spec::EgressRule;

/// Connections one sandbox may have open through the proxy at once; more
/// wait in the listen backlog (the host's descriptors are not the
/// sandbox's to spend).
const MAX_CONNECTIONS: usize = 256;
/// A client that has not sent its request head by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A running proxy. Dropping it stops it and ends every connection through it.
pub struct Egress {
    ctx: Arc<Ctx>,
    task: tokio::task::JoinHandle<()>,
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
        let ctx = Arc::new(Ctx::new(policy, sink));
        let task = tokio::spawn(accept_loop(listener, ctx.clone()));
        Ok(Egress { ctx, task })
    }

    /// Replaces the rules; connections opened from now on are judged by them.
    pub fn set_rules(&self, rules: Vec<EgressRule>) {
        self.ctx.set_rules(rules);
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

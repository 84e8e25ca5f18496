//! CONNECT: judge the target, connect to the checked address, answer 200,
//! then hold the sandbox's first bytes until its TLS ClientHello proves it
//! is asking the far end for the same name (no SNI/Host swapping).

use crate::ctx::{dial, empty, event, Body, Ctx};
use crate::event::{now_ms, Outcome};
use crate::policy::Deny;
use crate::sni::{read_client_hello, SniError};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

/// How long a tunnel may wait for the client's first bytes on port 443.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn connect(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
    permit: Arc<OwnedSemaphorePermit>,
    started: Instant,
) -> Response<Body> {
    let Some((host, port)) = req
        .uri()
        .authority()
        .and_then(|a| Some((a.host().to_string(), a.port_u16()?)))
    else {
        let ev = event("CONNECT", &req.uri().to_string(), 0);
        return ctx.refuse(
            ev,
            Deny::new("bad_target", "CONNECT needs host:port"),
            StatusCode::BAD_REQUEST,
        );
    };
    let mut ev = event("CONNECT", &host, port);
    let policy = ctx.policy();
    let (host, rule) = match policy.check(&host, port) {
        Ok(ok) => ok,
        Err(d) => return ctx.refuse(ev, d, StatusCode::FORBIDDEN),
    };
    ev.rule = Some(rule);
    let upstream = match dial(&policy, &host, port, &mut ev).await {
        Ok(s) => s,
        Err((d, status)) => return ctx.refuse(ev, d, status),
    };
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let work = async {
            let Ok(upgraded) = hyper::upgrade::on(req).await else {
                return;
            };
            let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
            let result = splice(TokioIo::new(upgraded), upstream, &host, port, &up, &down).await;
            ev.bytes_up = up.load(Ordering::Relaxed);
            ev.bytes_down = down.load(Ordering::Relaxed);
            ev.duration_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(()) => {
                    ev.outcome = Outcome::Allowed;
                    ctx.record(ev);
                }
                Err(d) => {
                    ev.duration_ms = now_ms().saturating_sub(ev.at_ms);
                    ev.outcome = Outcome::Denied;
                    ev.reason = Some(d.code.to_string());
                    ev.detail = Some(d.detail);
                    ctx.record(ev);
                }
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = work => {}
        }
    });
    Response::new(empty())
}

/// Pumps both ways. The sandbox-to-destination direction forwards nothing
/// until the first bytes are judged: a TLS ClientHello must name `host`
/// (and on port 443 the stream must be TLS); the other direction starts at
/// once, so protocols whose server speaks first still work on other ports.
async fn splice<C>(
    client: C,
    upstream: tokio::net::TcpStream,
    host: &str,
    port: u16,
    up: &AtomicU64,
    down: &AtomicU64,
) -> Result<(), Deny>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = upstream.into_split();
    let to_dest = async {
        let first = tokio::time::timeout(HELLO_TIMEOUT, read_client_hello(&mut cr)).await;
        let first = match first {
            Err(_) => {
                return Err(Deny::new(
                    "client_hello_timeout",
                    "no TLS ClientHello within 30 s",
                ))
            }
            Ok(Ok(hello)) => match hello.sni {
                Some(sni) if sni == host => hello.bytes,
                Some(sni) => {
                    return Err(Deny::new(
                        "sni_mismatch",
                        format!("TLS server name {sni:?} differs from the CONNECT host {host:?}"),
                    ))
                }
                None => {
                    return Err(Deny::new(
                        "sni_missing",
                        format!("TLS ClientHello without a server name (CONNECT {host}:{port})"),
                    ))
                }
            },
            Ok(Err(SniError::NotTls(bytes))) if port != 443 => bytes,
            Ok(Err(SniError::NotTls(_))) => {
                return Err(Deny::new("not_tls", "CONNECT to port 443 must carry TLS"))
            }
            Ok(Err(SniError::Unreadable(why))) => {
                return Err(Deny::new("client_hello_unreadable", why))
            }
            // The client went away before saying anything: nothing to judge.
            Ok(Err(SniError::Io(_))) => return Ok(()),
        };
        if uw.write_all(&first).await.is_err() {
            return Ok(());
        }
        up.fetch_add(first.len() as u64, Ordering::Relaxed);
        pump(&mut cr, &mut uw, up).await;
        Ok(())
    };
    let to_client = async {
        pump(&mut ur, &mut cw, down).await;
        Ok(())
    };
    tokio::try_join!(to_dest, to_client).map(|_| ())
}

/// Copies until EOF or an error, counting as it goes (so a reset still
/// reports what crossed), then half-closes the writer.
pub(crate) async fn pump<R, W>(r: &mut R, w: &mut W, count: &AtomicU64)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = w.shutdown().await;
}

//! Accepting client connections, with what keeps clients that never
//! authenticate from holding the API down: a cap on open connections, a
//! deadline for a request's head, an idle timeout between requests, and a
//! bounded read buffer per connection. `axum::serve` has none of these.

use crate::config::ServerConfig;
use axum::body::Body;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// hyper's read buffer per connection (its default is ~400 KiB): a head
/// larger than this is refused, and thousands of connections each filling
/// theirs cannot take much of the server's memory.
const MAX_BUF: usize = 64 * 1024;

/// What a connection is doing, for its timeouts.
struct Activity(Mutex<Act>);

struct Act {
    /// Requests being answered (a response whose body is still streaming
    /// counts).
    inflight: usize,
    /// When the first byte of a request head arrived, while it is not
    /// complete yet.
    head_since: Option<Instant>,
    /// When the connection last became idle.
    idle_since: Instant,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity(Mutex::new(Act {
            inflight: 0,
            head_since: None,
            idle_since: Instant::now(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Act> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: on an idle connection they start a request head.
    fn read(&self) {
        let mut a = self.lock();
        if a.inflight == 0 && a.head_since.is_none() {
            a.head_since = Some(Instant::now());
        }
    }

    /// A request's head was complete: it is being answered.
    fn begin(self: &Arc<Self>) -> InFlight {
        let mut a = self.lock();
        a.inflight += 1;
        a.head_since = None;
        InFlight(self.clone())
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, header: Duration, idle: Duration) -> Option<&'static str> {
        let a = self.lock();
        match a.head_since {
            Some(t) if t.elapsed() >= header => Some("request head not complete in time"),
            None if a.inflight == 0 && a.idle_since.elapsed() >= idle => Some("idle"),
            _ => None,
        }
    }
}

/// One request being answered; dropped once its response body ended (or
/// was abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut a = self.0.lock();
        a.inflight = a.inflight.saturating_sub(1);
        if a.inflight == 0 {
            a.idle_since = Instant::now();
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    inner: Body,
    _request: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's [`Activity`] when bytes arrive.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets open connections finish their requests and returns
/// once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let max = cfg
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max));
    let stop = CancellationToken::new();
    let limits = (cfg.header_timeout(), cfg.idle_timeout());
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, new connections wait in the
        // kernel's backlog instead of taking descriptors and memory.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };
        let tcp = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let tcp = match tcp {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning; the
                // per-connection errors (ECONNABORTED) need no pause.
                if e.kind() != io::ErrorKind::ConnectionAborted {
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // Streams (SSE, Connect) send small messages on kept-alive
        // connections; with Nagle's algorithm each one waits for the
        // client's delayed ACK (~40 ms per exec round trip).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            connection(tcp, app, limits, stop).await;
            drop(permit);
        });
    }
    stop.cancel();
    // Every connection holds a slot until it closes.
    let _ = slots.acquire_many(max as u32).await;
}

async fn connection(
    tcp: TcpStream,
    app: Router,
    (header, idle): (Duration, Duration),
    stop: CancellationToken,
) {
    let activity = Activity::new();
    let io = Watched {
        io: tcp,
        activity: activity.clone(),
    };
    let act = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let request = act.begin();
        let app = app.clone();
        async move {
            let resp = tower::ServiceExt::oneshot(app, req)
                .await
                .unwrap_or_else(|e: Infallible| match e {});
            Ok::<_, Infallible>(resp.map(|inner| {
                Body::new(Tracked {
                    inner,
                    _request: request,
                })
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_BUF)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(
        (header.min(idle) / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection: {e}");
                }
                return;
            }
            _ = tick.tick() => {
                if let Some(why) = activity.expired(header, idle) {
                    // Dropping the connection closes the socket; nothing
                    // is in flight on it.
                    tracing::debug!("closing a connection: {why}");
                    return;
                }
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

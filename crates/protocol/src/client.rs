//! The host side of the control channel: many concurrent requests over one
//! socket, each answered on its own channel.
//!
//! Flow control: the init may send each stream at most [`WINDOW`] bytes of
//! output or file data ahead of what the host has consumed; [`ResponseStream`]
//! returns credit as the caller takes data, so a sandbox printing faster than
//! the host reads is slowed down instead of filling the host's memory.

use crate::codec::{self, CodecError, Frame};
use crate::messages::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes a stream may have in flight before the init waits for credit.
pub const WINDOW: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("the sandbox's init closed the control channel")]
    Disconnected,
    #[error("{}: {}", kind_name(.0.kind), .0.message)]
    Remote(ErrorReply),
    #[error("unexpected response from init: {0}")]
    Unexpected(String),
}

fn kind_name(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::BadRequest => "bad request",
        ErrorKind::NotFound => "not found",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::AlreadyExists => "already exists",
        ErrorKind::NotADirectory => "not a directory",
        ErrorKind::IsADirectory => "is a directory",
        ErrorKind::DirectoryNotEmpty => "directory not empty",
        ErrorKind::NoSpace => "no space left",
        ErrorKind::TooLarge => "too large",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Io => "i/o error",
        ErrorKind::Refused => "connection refused",
    }
}

impl ClientError {
    /// The init's error kind, when the init refused the request.
    pub fn remote_kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Remote(r) => Some(r.kind),
            _ => None,
        }
    }
}

type Pending = Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Response>>>>;

/// A frame for the writer, and the file that goes with it (see
/// [`crate::passing`]).
struct Outgoing {
    bytes: Vec<u8>,
    file: Option<std::os::fd::OwnedFd>,
}

struct Inner {
    out: mpsc::UnboundedSender<Outgoing>,
    /// Whether the channel passes files (see [`Client::passes_files`]).
    passes_files: AtomicBool,
    pending: Pending,
    next_id: AtomicU32,
    /// Set once the channel is gone (the init closed it, a write failed,
    /// or [`Client::close`]): every request from then on fails at once
    /// instead of waiting for an answer that cannot come.
    closed: Arc<AtomicBool>,
    /// The reader and writer tasks, ended by [`Client::close`].
    tasks: [tokio::task::AbortHandle; 2],
}

/// Marks the channel closed, then wakes every waiter: in this order, a
/// request registered after the wake-up sees the flag (see `stream`).
fn shut(closed: &AtomicBool, pending: &Pending) {
    closed.store(true, Ordering::SeqCst);
    // Dropping every sender wakes every waiter with `Disconnected`.
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// A cheap-to-clone handle on one sandbox's control channel.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Everything a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub pid: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
}

impl Client {
    /// Performs the handshake and starts the reader and writer tasks on the
    /// current tokio runtime.
    pub async fn connect<S>(mut stream: S) -> Result<Client, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        codec::handshake(&mut stream).await?;
        Ok(Client::serve(stream, 1, None))
    }

    /// [`Client::connect`] on a Unix socket, over which the init can be
    /// passed files (`SCM_RIGHTS`, see [`crate::passing`]).
    pub async fn connect_passing_files(
        mut stream: tokio::net::UnixStream,
    ) -> Result<Client, ClientError> {
        codec::handshake(&mut stream).await?;
        let files = crate::passing::FileSender::new(&stream).map_err(CodecError::from)?;
        Ok(Client::serve(stream, 1, Some(files)))
    }

    /// Takes over the control channel of an init restored from a
    /// checkpoint (frozen by [`Client::freeze`] before it): no handshake
    /// (the init made it with the host that froze it); `Thaw` first, which
    /// lets go of that host's streams and says which request ids are free.
    pub async fn reattach<S>(mut stream: S) -> Result<Client, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Id 0 is never a request's id (they start at 1).
        codec::write_frame(
            &mut stream,
            &Frame {
                id: 0,
                body: Request::Thaw,
            },
        )
        .await?;
        loop {
            match codec::read_frame::<_, Response>(&mut stream).await? {
                None => return Err(ClientError::Disconnected),
                Some(Frame {
                    id: 0,
                    body: Response::Thawed { next_id },
                }) => return Ok(Client::serve(stream, next_id.max(1), None)),
                Some(Frame { id: 0, body }) => {
                    return Err(match body {
                        Response::Error(e) => ClientError::Remote(e),
                        other => ClientError::Unexpected(format!("{other:?}")),
                    })
                }
                // Queued for a stream of the host before the freeze.
                Some(_) => {}
            }
        }
    }

    /// Asks the init to write nothing more until a `Thaw` (before a
    /// checkpoint). Requests made after this one are not answered until
    /// then.
    pub async fn freeze(&self) -> Result<(), ClientError> {
        self.call_done(Request::Freeze).await
    }

    /// Undoes [`Client::freeze`] on the same channel (the checkpoint
    /// failed): the init lets go of every stream opened before, so this
    /// client must not be used for them any more.
    pub async fn thaw(&self) -> Result<(), ClientError> {
        match self.call(Request::Thaw).await? {
            Response::Thawed { .. } => Ok(()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Starts the reader and writer tasks on a channel past its handshake.
    fn serve<S>(stream: S, first_id: u32, files: Option<crate::passing::FileSender>) -> Client
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (out, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (writer_pending, writer_closed) = (pending.clone(), closed.clone());
        let passes_files = files.is_some();
        let writer = tokio::spawn(async move {
            while let Some(Outgoing { bytes, file }) = out_rx.recv().await {
                // The file rides on the first bytes of its frame; nothing
                // else is written meanwhile (this task is the only writer).
                let sent = match (file, &files) {
                    (None, _) => 0,
                    (Some(f), Some(sender)) => match sender.send(&bytes, &f).await {
                        Ok(n) => n,
                        Err(_) => break,
                    },
                    (Some(_), None) => break,
                };
                if wr.write_all(&bytes[sent..]).await.is_err() {
                    break;
                }
            }
            shut(&writer_closed, &writer_pending);
        });
        let (reader_pending, reader_closed) = (pending.clone(), closed.clone());
        let reader = tokio::spawn(async move {
            while let Ok(Some(Frame { id, body })) = codec::read_frame::<_, Response>(&mut rd).await
            {
                let mut map = reader_pending.lock().unwrap_or_else(|e| e.into_inner());
                let terminal = body.is_terminal();
                if let Some(tx) = map.get(&id) {
                    let _ = tx.send(body);
                }
                if terminal {
                    map.remove(&id);
                }
            }
            shut(&reader_closed, &reader_pending);
        });
        Client {
            inner: Arc::new(Inner {
                out,
                passes_files: AtomicBool::new(passes_files),
                pending,
                next_id: AtomicU32::new(first_id),
                closed,
                tasks: [reader.abort_handle(), writer.abort_handle()],
            }),
        }
    }

    /// Whether the channel is gone: every request now fails with
    /// `Disconnected`.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Closes the channel from this side (the sandbox is being destroyed):
    /// requests in flight and every later one fail with `Disconnected` at
    /// once, whether or not the other end ever closes its side.
    pub fn close(&self) {
        shut(&self.inner.closed, &self.inner.pending);
        for t in &self.inner.tasks {
            t.abort();
        }
    }

    /// Whether files can be passed to the init ([`Client::stream_with_file`]):
    /// a channel made by [`Client::connect_passing_files`].
    pub fn passes_files(&self) -> bool {
        self.inner.passes_files.load(Ordering::Relaxed)
    }

    /// From now on files go as frames: the init said a file it was sent
    /// did not come (a channel through something that drops them).
    pub fn stop_passing_files(&self) {
        self.inner.passes_files.store(false, Ordering::Relaxed);
    }

    pub(crate) fn send_raw(&self, id: u32, req: &Request) -> Result<(), ClientError> {
        self.send_frame(id, req, None)
    }

    fn send_frame(
        &self,
        id: u32,
        req: &Request,
        file: Option<std::os::fd::OwnedFd>,
    ) -> Result<(), ClientError> {
        if self.is_closed() {
            return Err(ClientError::Disconnected);
        }
        let bytes = codec::encode(&Frame { id, body: req })?;
        self.inner
            .out
            .send(Outgoing { bytes, file })
            .map_err(|_| ClientError::Disconnected)
    }

    /// Sends a request whose response nobody waits for (it is dropped on
    /// arrival: no channel is registered for its id).
    pub(crate) fn send_unanswered(&self, req: &Request) -> Result<(), ClientError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.send_raw(id, req)
    }

    /// Sends a request and returns the stream of its responses.
    pub fn stream(&self, req: Request) -> Result<ResponseStream, ClientError> {
        self.stream_inner(req, None)
    }

    /// [`Client::stream`] for a request that carries `file` (on a channel
    /// that [`Client::passes_files`]; on another the request is refused
    /// here, `Unsupported`).
    pub fn stream_with_file(
        &self,
        req: Request,
        file: std::os::fd::OwnedFd,
    ) -> Result<ResponseStream, ClientError> {
        if !self.passes_files() {
            return Err(ClientError::Remote(ErrorReply {
                kind: ErrorKind::Unsupported,
                message: "this sandbox's channel does not pass files".into(),
            }));
        }
        self.stream_inner(req, Some(file))
    }

    fn stream_inner(
        &self,
        req: Request,
        file: Option<std::os::fd::OwnedFd>,
    ) -> Result<ResponseStream, ClientError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        // Checked after registering: `shut` sets the flag before clearing
        // the map, so a request either is cleared with the others or sees
        // the flag here; none waits forever on a channel already gone.
        if let Err(e) = self.send_frame(id, &req, file) {
            self.inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(e);
        }
        Ok(ResponseStream {
            id,
            rx,
            client: self.clone(),
            unacked: 0,
            done: false,
        })
    }

    /// Sends a request and waits for its terminal response; an `Error`
    /// reply becomes `ClientError::Remote`.
    pub async fn call(&self, req: Request) -> Result<Response, ClientError> {
        let mut s = self.stream(req)?;
        loop {
            match s.next().await? {
                Some(r) if r.is_terminal() => return Ok(r),
                Some(_) => continue,
                None => return Err(ClientError::Disconnected),
            }
        }
    }
}

/// The responses to one request, in order, with credit returned as they are
/// consumed.
pub struct ResponseStream {
    id: u32,
    rx: mpsc::UnboundedReceiver<Response>,
    client: Client,
    unacked: u32,
    done: bool,
}

impl ResponseStream {
    /// The request id (what `Credit` and the init's logs refer to).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether the terminal response (or the end of the channel) was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next response; `Ok(None)` after the terminal one. An `Error`
    /// reply is returned as `Err(ClientError::Remote)`.
    pub async fn next(&mut self) -> Result<Option<Response>, ClientError> {
        if self.done {
            return Ok(None);
        }
        let r = match self.rx.recv().await {
            Some(r) => r,
            None => {
                self.done = true;
                return Err(ClientError::Disconnected);
            }
        };
        if r.is_terminal() {
            self.done = true;
        }
        let n = r.payload_len() as u32;
        if n > 0 && !self.done {
            self.unacked += n;
            // Return credit in batches: half a window keeps the pipe full
            // without a Credit frame per chunk.
            if self.unacked >= WINDOW / 2 {
                let bytes = std::mem::take(&mut self.unacked);
                let _ = self.client.send_raw(
                    0,
                    &Request::Credit {
                        stream: self.id,
                        bytes,
                    },
                );
            }
        }
        match r {
            Response::Error(e) => Err(ClientError::Remote(e)),
            r => Ok(Some(r)),
        }
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if !self.done {
            // Nobody will read the rest: forget the stream so the reader
            // task does not queue its data for no one.
            self.client
                .inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
            // ...and let the init drain it freely instead of stalling the
            // process behind an exhausted window.
            let _ = self.client.send_raw(
                0,
                &Request::Credit {
                    stream: self.id,
                    bytes: u32::MAX,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A peer that completes the handshake and hands back its end.
    async fn connected() -> (Client, tokio::io::DuplexStream) {
        let (host, mut peer) = tokio::io::duplex(1 << 16);
        let peer_side = tokio::spawn(async move {
            codec::handshake(&mut peer).await.unwrap();
            peer
        });
        let client = Client::connect(host).await.unwrap();
        (client, peer_side.await.unwrap())
    }

    /// A hang shows up as a failed test, not a stuck one.
    async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("the request hung on a closed channel")
    }

    #[tokio::test]
    async fn requests_after_the_init_went_away_fail_at_once() {
        let (client, peer) = connected().await;
        let pending = client.stream(Request::Ping).unwrap();
        drop(peer);
        let mut pending = pending;
        assert!(matches!(
            bounded(pending.next()).await,
            Err(ClientError::Disconnected)
        ));
        // Before the fix, a request made after the reader had seen the end
        // was registered anew and waited forever.
        for _ in 0..3 {
            assert!(matches!(
                bounded(client.ping()).await,
                Err(ClientError::Disconnected)
            ));
        }
        assert!(client.is_closed());
    }

    #[tokio::test]
    async fn close_fails_requests_even_while_the_peer_stays_open() {
        let (client, _peer) = connected().await;
        let waiting = tokio::spawn({
            let c = client.clone();
            async move { c.ping().await }
        });
        // The peer never answers and never closes (a channel whose other
        // end something else still holds).
        tokio::task::yield_now().await;
        client.close();
        assert!(matches!(
            bounded(waiting).await.unwrap(),
            Err(ClientError::Disconnected)
        ));
        assert!(matches!(
            client.stream(Request::Ping),
            Err(ClientError::Disconnected)
        ));
    }
}

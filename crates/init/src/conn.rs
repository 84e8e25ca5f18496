//! The init's side of the control channel: one writer, per-stream credit.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use tokio::sync::{mpsc, Notify, Semaphore};
use warden_protocol::{codec, ErrorKind, Frame, Response, WINDOW};

/// What the writer task is asked to do.
pub enum Out {
    Frame(Vec<u8>),
    /// Write everything queued before this, then end the init.
    Exit,
    /// Write everything queued before this and this frame (the answer to
    /// `Freeze`), then nothing until [`Conn::thaw`].
    Freeze(Vec<u8>),
}

pub struct Conn {
    out: mpsc::Sender<Out>,
    credits: RefCell<HashMap<u32, Rc<Semaphore>>>,
    /// Set from `Freeze` until `Thaw`; the writer waits on `thawed`.
    frozen: Cell<bool>,
    pub thawed: Notify,
    /// The writer's half of the channel while it is frozen: the reader
    /// takes it at `Thaw` to register the channel anew (see `server.rs`).
    pub parked: RefCell<Option<tokio::net::unix::OwnedWriteHalf>>,
}

impl Conn {
    pub fn new(out: mpsc::Sender<Out>) -> Self {
        Conn {
            out,
            credits: RefCell::default(),
            frozen: Cell::new(false),
            thawed: Notify::new(),
            parked: RefCell::default(),
        }
    }

    /// Whether a `Freeze` has come and no `Thaw` since.
    pub fn frozen(&self) -> bool {
        self.frozen.get()
    }

    /// Queues the answer to `Freeze` (request `id`): the writer stops
    /// after it.
    pub async fn freeze(&self, id: u32) {
        if self.frozen.replace(true) {
            return self.send(id, Response::Done).await;
        }
        if let Ok(buf) = codec::encode(&Frame {
            id,
            body: Response::Done,
        }) {
            let _ = self.out.send(Out::Freeze(buf)).await;
        }
    }

    /// Lets every stream opened before go on without credit (their host
    /// is gone) and the writer write again. The writer may not have
    /// reached the freeze yet: `Notify` keeps the wake-up for it.
    pub fn thaw(&self) {
        for (_, sem) in self.credits.borrow_mut().drain() {
            sem.close();
        }
        if self.frozen.replace(false) {
            self.thawed.notify_one();
        }
    }

    /// Queues one response; a vanished host is not an error here (the main
    /// loop notices the closed socket and shuts the sandbox down).
    pub async fn send(&self, id: u32, body: Response) {
        match codec::encode(&Frame { id, body }) {
            Ok(buf) => {
                let _ = self.out.send(Out::Frame(buf)).await;
            }
            Err(e) => {
                // Only an oversized frame can fail to encode; say so instead.
                let msg = Response::error(ErrorKind::TooLarge, e.to_string());
                if let Ok(buf) = codec::encode(&Frame { id, body: msg }) {
                    let _ = self.out.send(Out::Frame(buf)).await;
                }
            }
        }
    }

    pub async fn exit(&self) {
        let _ = self.out.send(Out::Exit).await;
    }

    /// Registers a stream that sends payload under flow control.
    pub fn open_stream(&self, id: u32) -> Rc<Semaphore> {
        let sem = Rc::new(Semaphore::new(WINDOW as usize));
        self.credits.borrow_mut().insert(id, sem.clone());
        sem
    }

    pub fn close_stream(&self, id: u32) {
        self.credits.borrow_mut().remove(&id);
    }

    /// Sends payload once the stream has credit for it.
    pub async fn send_payload(&self, id: u32, credit: &Semaphore, body: Response) {
        let n = body.payload_len() as u32;
        if n > 0 {
            // A closed semaphore means "unlimited": the host stopped reading
            // and asked us to drain freely.
            if let Ok(permit) = credit.acquire_many(n).await {
                permit.forget();
            }
        }
        self.send(id, body).await;
    }

    pub fn credit(&self, stream: u32, bytes: u32) {
        if let Some(sem) = self.credits.borrow().get(&stream) {
            if bytes == u32::MAX {
                sem.close();
            } else if sem.available_permits() < (WINDOW as usize) * 4 {
                sem.add_permits(bytes as usize);
            }
        }
    }
}

/// Writes `data` to the writer in `slot`, or (`None`) closes it by dropping
/// it; `closed` says why a write found it already closed. What a process's
/// stdin and a tunnel's sending side share.
pub async fn write_or_close<W: tokio::io::AsyncWrite + Unpin>(
    slot: &tokio::sync::Mutex<Option<W>>,
    data: Option<Vec<u8>>,
    closed: impl FnOnce() -> String,
    context: &str,
) -> Response {
    use tokio::io::AsyncWriteExt;
    let mut guard = slot.lock().await;
    match (data, guard.as_mut()) {
        (None, _) => {
            guard.take();
            Response::Done
        }
        (Some(_), None) => Response::error(ErrorKind::BadRequest, closed()),
        (Some(d), Some(w)) => match w.write_all(&d).await {
            Ok(()) => Response::Done,
            Err(e) => io_error(context, &e),
        },
    }
}

/// Maps an OS error to the protocol's kinds, keeping the message.
pub fn io_error(context: &str, e: &std::io::Error) -> Response {
    let kind = match e.raw_os_error() {
        Some(libc::ENOENT) => ErrorKind::NotFound,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => ErrorKind::PermissionDenied,
        Some(libc::EEXIST) => ErrorKind::AlreadyExists,
        Some(libc::ENOTDIR) => ErrorKind::NotADirectory,
        Some(libc::EISDIR) => ErrorKind::IsADirectory,
        Some(libc::ENOTEMPTY) => ErrorKind::DirectoryNotEmpty,
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => ErrorKind::NoSpace,
        Some(libc::EFBIG) | Some(libc::E2BIG) => ErrorKind::TooLarge,
        Some(libc::EOPNOTSUPP) => ErrorKind::Unsupported,
        Some(libc::ELOOP) => ErrorKind::PermissionDenied,
        _ if e.kind() == std::io::ErrorKind::InvalidInput => ErrorKind::BadRequest,
        _ => ErrorKind::Io,
    };
    Response::error(kind, format!("{context}: {e}"))
}

//! Tunnels to servers inside the sandbox (`Connect`, `Send`, `CloseSend`):
//! the host reaches a port the sandbox listens on through the init, never
//! through a network of its own. That is the same on every backend (a
//! native sandbox's network namespace and gVisor's netstack alike), and a
//! sandbox with no network at all can still serve its ports to the host.
//!
//! A tunnel is one TCP connection from the init to the sandbox's loopback.
//! What the server sends goes to the host as `Data` under the stream's
//! credit window; what the host sends is written in order, one `Send` at a
//! time. The tunnel ends, in both directions, when the server closes its
//! side, when the host cancels it, or when the host goes away.

use crate::conn::{io_error, write_or_close};
use crate::State;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Notify};
use warden_protocol::{ErrorKind, Response, CHUNK};

/// Open tunnels per sandbox: each holds a socket and a buffer of the init's.
pub const MAX_TUNNELS: usize = 256;

struct Open {
    /// Taken by `CloseSend` (dropping it half-closes the connection).
    writer: Rc<Mutex<Option<OwnedWriteHalf>>>,
    cancel: Rc<Notify>,
}

#[derive(Default)]
pub struct Tunnels {
    open: RefCell<HashMap<u32, Open>>,
}

impl Tunnels {
    /// Ends tunnel `id`, if it is open.
    pub fn cancel(&self, id: u32) {
        if let Some(t) = self.open.borrow_mut().remove(&id) {
            t.cancel.notify_one();
        }
    }

    /// Ends every tunnel (their host is gone: see `Request::Thaw`).
    pub fn cancel_all(&self) {
        for (_, t) in self.open.borrow_mut().drain() {
            t.cancel.notify_one();
        }
    }

    fn writer(&self, id: u32) -> Option<Rc<Mutex<Option<OwnedWriteHalf>>>> {
        self.open.borrow().get(&id).map(|t| t.writer.clone())
    }
}

/// The sandbox's loopback, IPv4 first: a server bound to `0.0.0.0`, to
/// `127.0.0.1` or to `::` answers there; one bound to `::1` only, on the
/// second.
async fn dial(port: u16) -> std::io::Result<TcpStream> {
    match TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
                .await
                .map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// Serves a `Connect` (request `id`) until the tunnel ends.
pub async fn connect(state: Rc<State>, id: u32, port: u16) {
    if state.tunnels.open.borrow().len() >= MAX_TUNNELS {
        let msg = format!("too many open connections: at most {MAX_TUNNELS} per sandbox");
        state
            .conn
            .send(id, Response::error(ErrorKind::TooLarge, msg))
            .await;
        return;
    }
    let stream = match dial(port).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            let msg = format!("nothing listens on port {port} in the sandbox");
            state
                .conn
                .send(id, Response::error(ErrorKind::Refused, msg))
                .await;
            return;
        }
        Err(e) => {
            let reply = io_error(&format!("connect to port {port}"), &e);
            state.conn.send(id, reply).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let cancel = Rc::new(Notify::new());
    state.tunnels.open.borrow_mut().insert(
        id,
        Open {
            writer: Rc::new(Mutex::new(Some(wr))),
            cancel: cancel.clone(),
        },
    );
    let credit = state.conn.open_stream(id);
    state.conn.send(id, Response::Connected).await;
    let mut buf = vec![0u8; CHUNK];
    let pump = async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Response::Done,
                Ok(n) => {
                    let data = Response::Data(buf[..n].to_vec());
                    state.conn.send_payload(id, &credit, data).await;
                }
                Err(e) => return io_error(&format!("read from port {port}"), &e),
            }
        }
    };
    let end = tokio::select! {
        end = pump => end,
        _ = cancel.notified() => Response::Done,
    };
    // Both directions end here: the writer goes with the entry.
    state.tunnels.open.borrow_mut().remove(&id);
    state.conn.close_stream(id);
    state.conn.send(id, end).await;
}

/// `Send` (`data`) or `CloseSend` (`None`) on tunnel `stream`.
pub async fn send(state: &State, stream: u32, data: Option<Vec<u8>>) -> Response {
    let Some(writer) = state.tunnels.writer(stream) else {
        return Response::error(ErrorKind::NotFound, format!("no open tunnel {stream}"));
    };
    // Closing drops the write half, which sends FIN.
    let closed = || format!("tunnel {stream} was closed for sending");
    write_or_close(&writer, data, closed, "write to the sandbox's server").await
}

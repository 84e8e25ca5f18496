//! `Watch` streams: the registry (at most [`MAX_WATCHES`] per sandbox,
//! cancellable by request id) and the loop that reads inotify and sends
//! `FsEvents` under the stream's credit.
//!
//! Events are read from the kernel as they come, whatever the host's
//! credit, into a queue bounded by [`MAX_QUEUED`]: the kernel's own queue
//! is bounded on Linux (`IN_Q_OVERFLOW`) but not under every gVisor release,
//! and a host that stops reading must not cost the sandbox unbounded memory.
//! Past the bound the stream ends with "event queue overflowed".

use crate::watch_tree::{read_events, End, Tree};
use crate::{files, State};
use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{Notify, Semaphore};
use warden_protocol::{ErrorKind, FsEvent, Response, CHUNK};

/// Concurrent `Watch` streams per sandbox.
pub const MAX_WATCHES: usize = 32;
/// Event bytes (as counted by `FsEvent::cost`) one stream may hold back.
pub const MAX_QUEUED: usize = 4 << 20;

/// The live watches, by request id, each with the signal that cancels it.
#[derive(Default)]
pub struct Watches {
    active: RefCell<HashMap<u32, Rc<Notify>>>,
}

impl Watches {
    /// Ends watch `id` (if it is still running). Its slot is free at once,
    /// so a `Watch` sent right after the `Cancel` is not refused.
    pub fn cancel(&self, id: u32) {
        if let Some(n) = self.active.borrow_mut().remove(&id) {
            n.notify_one();
        }
    }

    /// Ends every watch (their host is gone: see `Request::Thaw`).
    pub fn cancel_all(&self) {
        for (_, n) in self.active.borrow_mut().drain() {
            n.notify_one();
        }
    }

    fn register(&self, id: u32) -> Result<Rc<Notify>, Response> {
        let mut active = self.active.borrow_mut();
        if active.len() >= MAX_WATCHES {
            return Err(Response::error(
                ErrorKind::TooLarge,
                format!("too many watches: at most {MAX_WATCHES} per sandbox"),
            ));
        }
        match active.entry(id) {
            Entry::Occupied(_) => Err(Response::error(
                ErrorKind::BadRequest,
                format!("request id {id} is already a watch"),
            )),
            Entry::Vacant(v) => Ok(v.insert(Rc::new(Notify::new())).clone()),
        }
    }

    fn release(&self, id: u32, n: &Rc<Notify>) {
        let mut active = self.active.borrow_mut();
        if active.get(&id).is_some_and(|m| Rc::ptr_eq(m, n)) {
            active.remove(&id);
        }
    }
}

/// Frees the registry slot however the stream ends.
struct Slot {
    state: Rc<State>,
    id: u32,
    cancel: Rc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.watches.release(self.id, &self.cancel);
    }
}

/// Registers watch `id` and starts it. Called by the request loop itself,
/// not from a task, so a `Cancel` read right after always finds it.
pub fn start(state: Rc<State>, id: u32, path: String, recursive: bool) {
    match state.watches.register(id) {
        Ok(cancel) => {
            let slot = Slot {
                state: state.clone(),
                id,
                cancel,
            };
            tokio::task::spawn_local(run(slot, path, recursive));
        }
        Err(refused) => {
            tokio::task::spawn_local(async move { state.conn.send(id, refused).await });
        }
    }
}

async fn run(slot: Slot, path: String, recursive: bool) {
    let (state, id) = (slot.state.clone(), slot.id);
    let p = match files::resolve(&state, &path) {
        Ok(p) => p,
        Err(e) => return state.conn.send(id, e).await,
    };
    let opened = tokio::task::spawn_blocking(move || Tree::open(&p, recursive)).await;
    let tree = match opened {
        Ok(Ok(t)) => t,
        Ok(Err(end)) => return state.conn.send(id, end.response()).await,
        Err(e) => return state.conn.send(id, join_error(e)).await,
    };
    // SAFETY: the Arc keeps the descriptor open, unchanged, for as long as
    // the AsyncFd holds it.
    let fd = match unsafe { AsyncFd::register_with_interest(tree.inotify(), Interest::READABLE) } {
        Ok(fd) => fd,
        Err(e) => {
            let e = std::io::Error::from(e);
            let resp = crate::conn::io_error("cannot poll the inotify descriptor", &e);
            return state.conn.send(id, resp).await;
        }
    };
    let credit = state.conn.open_stream(id);
    state.conn.send(id, Response::Watching).await;
    let end = pump(&state, id, &credit, &fd, tree, &slot.cancel).await;
    state.conn.close_stream(id);
    // Close the inotify descriptor (dropping its watches) before the
    // terminal response, so a host that sees it can count on it.
    drop(fd);
    state.conn.send(id, end).await;
}

fn join_error(e: tokio::task::JoinError) -> Response {
    Response::error(ErrorKind::Io, format!("watch failed: {e}"))
}

/// Moves events from inotify to the host until the watch is cancelled or
/// ends on its own; returns the terminal response.
async fn pump(
    state: &State,
    id: u32,
    credit: &Semaphore,
    fd: &AsyncFd<Arc<OwnedFd>>,
    tree: Tree,
    cancel: &Notify,
) -> Response {
    let mut tree = Some(tree);
    let mut queue: VecDeque<FsEvent> = VecDeque::new();
    let mut queued = 0usize;
    // Set when the watch has ended on its own: what is queued still goes
    // out first.
    let mut ending: Option<Response> = None;
    loop {
        if queue.is_empty() {
            if let Some(end) = ending.take() {
                return end;
            }
        }
        let batch = batch_len(&queue);
        let want: u32 = queue.iter().take(batch).map(|e| e.cost() as u32).sum();
        tokio::select! {
            biased;
            _ = cancel.notified() => return Response::Done,
            ready = fd.readable(), if ending.is_none() => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => {
                        ending = Some(crate::conn::io_error("inotify", &e));
                        continue;
                    }
                };
                let events = match guard.try_io(|fd| read_events(fd.get_ref())) {
                    Ok(Ok(events)) => events,
                    Ok(Err(e)) => {
                        ending = Some(crate::conn::io_error("inotify", &e));
                        continue;
                    }
                    // Nothing after all: readiness is cleared, wait again.
                    Err(_) => continue,
                };
                let Some(mut t) = tree.take() else {
                    continue;
                };
                let mut out = Vec::new();
                let result = if events.iter().any(|e| e.may_scan()) {
                    // New directories are read: off the protocol loop.
                    match tokio::task::spawn_blocking(move || {
                        let r = t.apply(events, &mut out);
                        (t, r, out)
                    })
                    .await
                    {
                        Ok((t, r, o)) => {
                            tree = Some(t);
                            out = o;
                            r
                        }
                        Err(e) => {
                            ending = Some(join_error(e));
                            continue;
                        }
                    }
                } else {
                    let r = t.apply(events, &mut out);
                    tree = Some(t);
                    r
                };
                for ev in out {
                    queued += ev.cost();
                    queue.push_back(ev);
                }
                if let Err(end) = result {
                    ending = Some(end.response());
                } else if queued > MAX_QUEUED {
                    ending = Some(End::Overflow.response());
                }
            }
            permit = credit.acquire_many(want), if want > 0 => {
                // A closed semaphore means the host drains freely.
                if let Ok(p) = permit {
                    p.forget();
                }
                let events: Vec<FsEvent> = queue.drain(..batch).collect();
                queued -= events.iter().map(FsEvent::cost).sum::<usize>();
                state.conn.send(id, Response::FsEvents(events)).await;
            }
        }
    }
}

/// How many queued events go in the next frame: up to a chunk's worth
/// (always at least one; a single event is far smaller than a chunk).
fn batch_len(queue: &VecDeque<FsEvent>) -> usize {
    let mut total = 0;
    let mut n = 0;
    for ev in queue {
        if n > 0 && total + ev.cost() > CHUNK {
            break;
        }
        total += ev.cost();
        n += 1;
    }
    n
}

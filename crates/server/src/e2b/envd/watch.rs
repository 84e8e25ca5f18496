//! Directory watching: the `WatchDir` stream and its polling flavour
//! (`CreateWatcher` / `GetWatcherEvents` / `RemoveWatcher`, which the
//! Python SDK's synchronous client uses), both on the init's inotify-based
//! `Watch`.

use super::entry::entry;
use super::errors::from_client;
use super::paths::{absolute, join};
use super::rpc::{Call, Sink};
use super::watch_budget::{Budget, Charges, Limit};
use crate::manager::Live;
use crate::state::Shared;
use axum::response::Response;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use warden_envd_wire::connect::{Error, Shape};
use warden_envd_wire::filesystem::{
    watch_dir_response as wd, CreateWatcherRequest, CreateWatcherResponse, EventType,
    FilesystemEvent, GetWatcherEventsResponse, WatchDirRequest, WatchDirResponse,
};
use warden_protocol::{FsEvent, FsEventKind, Watch};

/// Polling watchers per sandbox (the init bounds its watches too).
const MAX_WATCHERS: usize = 32;
/// Events a polling watcher keeps between polls; past that (or past its
/// share of memory, see `watch_budget`) the oldest go and the next poll
/// reports the loss.
const MAX_QUEUED: usize = 10_000;
const KEEPALIVE: Duration = Duration::from_secs(30);

/// Warden writes files atomically (a temp file `.NAME.warden-P-H.tmp`
/// renamed over NAME), where envd writes in place. So a watcher sees what
/// an E2B user expects, the temp file's events are dropped and its rename
/// into place reads as envd's upload does: NAME created, its owner and mode
/// set (envd's chown), then written.
#[derive(Default)]
struct WriteFolding {
    renamed_temp: bool,
}

fn is_write_temp(name: &[u8]) -> bool {
    let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
    base.starts_with(b".") && base.ends_with(b".tmp") && base.windows(8).any(|w| w == b".warden-")
}

impl WriteFolding {
    fn fold(&mut self, events: Vec<FsEvent>) -> Vec<FsEvent> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if is_write_temp(&e.name) {
                self.renamed_temp = e.kind == FsEventKind::Rename;
                continue;
            }
            let completes_write =
                std::mem::take(&mut self.renamed_temp) && e.kind == FsEventKind::Create;
            let name = e.name.clone();
            out.push(e);
            if completes_write {
                for kind in [FsEventKind::Chmod, FsEventKind::Write] {
                    out.push(FsEvent {
                        kind,
                        name: name.clone(),
                    });
                }
            }
        }
        out
    }
}

/// One polling watcher: a task moving the init's events into a queue.
struct Polled {
    queue: Mutex<Queue>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    charges: Charges,
}

#[derive(Default)]
struct Queue {
    /// Each event with what it was charged.
    events: VecDeque<(FilesystemEvent, usize)>,
    dropped: u64,
    /// The limit that made the last drop.
    why: Option<Limit>,
    ended: Option<Error>,
}

/// What a queued event is charged: the struct and what it points to.
fn cost(e: &FilesystemEvent) -> usize {
    use warden_envd_wire::prost::Message;
    std::mem::size_of::<(FilesystemEvent, usize)>()
        + e.encoded_len()
        + e.entry.as_ref().map_or(0, |_| {
            std::mem::size_of::<warden_envd_wire::filesystem::EntryInfo>()
        })
}

impl Polled {
    /// Queues an event, making room by dropping this watcher's oldest.
    fn push(&self, e: FilesystemEvent) {
        let n = cost(&e);
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let refused = if q.events.len() >= MAX_QUEUED {
                Limit::Count(MAX_QUEUED)
            } else {
                match self.charges.take(n) {
                    Ok(()) => {
                        q.events.push_back((e, n));
                        return;
                    }
                    Err(limit) => limit,
                }
            };
            q.dropped += 1;
            q.why = Some(refused);
            match q.events.pop_front() {
                // One of ours dropped instead of the new one; try again.
                Some((_, freed)) => self.charges.give(freed),
                // Nothing of ours to drop: the others hold the room.
                None => return,
            }
        }
    }

    /// Takes every queued event, giving their room back.
    fn drain(&self, q: &mut Queue) -> Vec<FilesystemEvent> {
        q.events
            .drain(..)
            .map(|(e, n)| {
                self.charges.give(n);
                e
            })
            .collect()
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        // Aborting the task drops its `Watch`, which cancels it in the init.
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
        let mut q = std::mem::take(self.queue.get_mut().unwrap_or_else(|e| e.into_inner()));
        self.drain(&mut q);
    }
}

#[derive(Default)]
pub struct Watchers {
    map: Mutex<HashMap<String, Arc<Polled>>>,
    /// Shared by this sandbox's watchers (made with the first one).
    budget: OnceLock<Arc<Budget>>,
}

impl Watchers {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Polled>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn kind(k: FsEventKind) -> EventType {
    match k {
        FsEventKind::Create => EventType::Create,
        FsEventKind::Write => EventType::Write,
        FsEventKind::Remove => EventType::Remove,
        FsEventKind::Rename => EventType::Rename,
        FsEventKind::Chmod => EventType::Chmod,
    }
}

/// E2B's event; with `include_entry`, the entry as it is now (none for
/// what is gone).
async fn convert(live: &Live, dir: &str, e: FsEvent, include_entry: bool) -> FilesystemEvent {
    let name = String::from_utf8_lossy(&e.name).into_owned();
    let entry = if include_entry && !matches!(e.kind, FsEventKind::Remove | FsEventKind::Rename) {
        let path = join(dir, &name);
        live.client
            .stat(&path)
            .await
            .ok()
            .map(|st| entry(&path, &st))
    } else {
        None
    };
    FilesystemEvent {
        name,
        r#type: kind(e.kind) as i32,
        entry,
    }
}

async fn start_watch(live: &Live, path: &str, recursive: bool) -> Result<(String, Watch), Error> {
    let dir = absolute(path)?;
    let watch = live
        .client
        .watch(&dir, recursive)
        .await
        .map_err(from_client)?;
    Ok((dir, watch))
}

pub async fn watch_dir(live: Arc<Live>, call: &Call) -> Response {
    let started = async {
        let req: WatchDirRequest = call.message(Shape::Stream)?;
        let (dir, watch) = start_watch(&live, &req.path, req.recursive).await?;
        Ok((dir, watch, req.include_entry))
    }
    .await;
    match started {
        Ok((dir, watch, include)) => {
            call.stream(
                move |sink| async move { stream_events(live, dir, watch, include, sink).await },
            )
        }
        Err(e) => super::rpc::fail(call.shape, call.codec, e),
    }
}

async fn stream_events(live: Arc<Live>, dir: String, mut watch: Watch, include: bool, sink: Sink) {
    let msg = |e| WatchDirResponse { event: Some(e) };
    if !sink.send(&msg(wd::Event::Start(wd::StartEvent {}))).await {
        return;
    }
    let mut folding = WriteFolding::default();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        let next = tokio::select! {
            r = watch.next() => r,
            _ = keepalive.tick() => {
                if !sink.send(&msg(wd::Event::Keepalive(wd::KeepAlive {}))).await {
                    return;
                }
                continue;
            }
            _ = sink.deadline() => {
                sink.fail(Error::deadline_exceeded("the watch's deadline passed")).await;
                return;
            }
            _ = sink.closed() => return,
        };
        match next {
            Ok(Some(events)) => {
                for e in folding.fold(events) {
                    let ev = convert(&live, &dir, e, include).await;
                    if !sink.send(&msg(wd::Event::Filesystem(ev))).await {
                        return;
                    }
                }
            }
            Ok(None) => return,
            Err(e) => {
                sink.fail(from_client(e)).await;
                return;
            }
        }
    }
}

pub async fn create_watcher(
    st: &Shared,
    live: &Arc<Live>,
    watchers: &Watchers,
    req: CreateWatcherRequest,
) -> Result<CreateWatcherResponse, Error> {
    if watchers.map().len() >= MAX_WATCHERS {
        return Err(Error::resource_exhausted(format!(
            "at most {MAX_WATCHERS} watchers per sandbox; remove one first"
        )));
    }
    let (dir, mut watch) = start_watch(live, &req.path, req.recursive).await?;
    let id = format!("w_{:016x}", rand::random::<u64>());
    let include = req.include_entry;
    let limits = &st.cfg.server;
    let sandbox = watchers
        .budget
        .get_or_init(|| Budget::new(limits.watcher_sandbox_bytes))
        .clone();
    let tenant = st
        .buffers
        .watch
        .get(&live.tenant, limits.watcher_tenant_bytes);
    let polled = Arc::new(Polled {
        queue: Mutex::default(),
        task: Mutex::default(),
        charges: Charges::new(
            limits.watcher_bytes,
            sandbox,
            tenant,
            st.buffers.total.clone(),
        ),
    });
    // The task holds its watcher weakly: removing the watcher (or the
    // sandbox ending) drops it, which aborts the task.
    let weak_polled = Arc::downgrade(&polled);
    let weak_live = Arc::downgrade(live);
    let task = tokio::spawn(async move {
        let mut folding = WriteFolding::default();
        loop {
            let next = watch.next().await;
            let (Some(live), Some(polled)) = (weak_live.upgrade(), weak_polled.upgrade()) else {
                return;
            };
            match next {
                Ok(Some(events)) => {
                    let mut converted = Vec::with_capacity(events.len());
                    for e in folding.fold(events) {
                        converted.push(convert(&live, &dir, e, include).await);
                    }
                    for e in converted {
                        polled.push(e);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let mut q = polled.queue.lock().unwrap_or_else(|e| e.into_inner());
                    q.ended = Some(from_client(e));
                    return;
                }
            }
        }
    });
    *polled.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
    watchers.map().insert(id.clone(), polled);
    Ok(CreateWatcherResponse { watcher_id: id })
}

pub fn get_events(watchers: &Watchers, id: &str) -> Result<GetWatcherEventsResponse, Error> {
    let polled = watchers
        .map()
        .get(id)
        .cloned()
        .ok_or_else(|| Error::not_found(format!("no watcher {id:?}")))?;
    let mut q = polled.queue.lock().unwrap_or_else(|e| e.into_inner());
    if q.dropped > 0 {
        let n = std::mem::take(&mut q.dropped);
        let why = q.why.take().unwrap_or(Limit::Count(MAX_QUEUED));
        polled.drain(&mut q);
        return Err(Error::resource_exhausted(format!(
            "{n} events were dropped: {why}; poll more often"
        )));
    }
    let events = polled.drain(&mut q);
    if events.is_empty() {
        if let Some(e) = q.ended.take() {
            drop(q);
            watchers.map().remove(id);
            return Err(e);
        }
    }
    Ok(GetWatcherEventsResponse { events })
}

pub fn remove_watcher(watchers: &Watchers, id: &str) -> Result<(), Error> {
    watchers
        .map()
        .remove(id)
        .map(drop)
        .ok_or_else(|| Error::not_found(format!("no watcher {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: FsEventKind, name: &str) -> FsEvent {
        FsEvent {
            kind,
            name: name.as_bytes().to_vec(),
        }
    }

    #[test]
    fn atomic_writes_read_as_in_place_writes() {
        use FsEventKind::*;
        let mut f = WriteFolding::default();
        let out = f.fold(vec![
            ev(Create, "d/.a.txt.warden-1-3.tmp"),
            ev(Chmod, "d/.a.txt.warden-1-3.tmp"),
            ev(Write, "d/.a.txt.warden-1-3.tmp"),
        ]);
        assert!(out.is_empty());
        // The rename may arrive in the next batch.
        let out = f.fold(vec![ev(Rename, "d/.a.txt.warden-1-3.tmp")]);
        assert!(out.is_empty());
        let out = f.fold(vec![ev(Create, "d/a.txt"), ev(Remove, "b")]);
        assert_eq!(
            out,
            vec![
                ev(Create, "d/a.txt"),
                ev(Chmod, "d/a.txt"),
                ev(Write, "d/a.txt"),
                ev(Remove, "b")
            ]
        );
        // A user's own dotfiles and a plain create are left alone.
        let out = f.fold(vec![ev(Create, ".env.tmp"), ev(Create, "x")]);
        assert_eq!(out, vec![ev(Create, ".env.tmp"), ev(Create, "x")]);
    }
}

//! Sandboxes' egress proxies (see `warden-egress`) and the log they write.
//!
//! The proxy reports from its own tasks, synchronously; a bounded channel
//! carries events to one writer task that appends them in batches, so a
//! sandbox hammering its proxy costs the host a bounded queue, not
//! unbounded memory (events past the bound are counted and dropped).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use warden_egress::{Egress, EgressEvent, Overrides, Policy};
use warden_spec::EgressRule;
use warden_store::{MetaStore, SandboxId, TenantId};

const QUEUE: usize = 8192;
const BATCH: usize = 256;

enum Msg {
    Event(Box<(TenantId, SandboxId, EgressEvent)>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

pub struct EgressHub {
    overrides: Arc<Overrides>,
    tx: mpsc::Sender<Msg>,
}

impl EgressHub {
    /// Starts the log writer on the current runtime.
    pub fn start(meta: Arc<dyn MetaStore>, overrides: Overrides) -> Arc<EgressHub> {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(meta, rx));
        Arc::new(EgressHub {
            overrides: Arc::new(overrides),
            tx,
        })
    }

    /// Serves a sandbox's egress listener under `rules`.
    pub fn proxy(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        listener: std::net::TcpListener,
        rules: Vec<EgressRule>,
        masker: Option<Arc<crate::secrets::Masker>>,
    ) -> std::io::Result<Egress> {
        let (tenant, sandbox, tx) = (tenant.clone(), sandbox.clone(), self.tx.clone());
        let sink = move |mut ev: EgressEvent| {
            // What the sandbox chose to send (a host name, a method) could
            // carry one of its secrets out into the log: mask them there.
            if let Some(m) = &masker {
                ev.host = m.mask_text(&ev.host);
                ev.method = m.mask_text(&ev.method);
                ev.detail = ev.detail.as_deref().map(|d| m.mask_text(d));
            }
            crate::metrics::egress_attempt(ev.outcome.as_str());
            if tx
                .try_send(Msg::Event(Box::new((tenant.clone(), sandbox.clone(), ev))))
                .is_err()
            {
                crate::metrics::egress_attempt("dropped");
            }
        };
        let policy = Policy {
            rules,
            overrides: self.overrides.clone(),
        };
        Egress::start(listener, policy, Arc::new(sink))
    }

    /// Waits (briefly) until every event reported so far is in the store,
    /// so a reader sees what already happened.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
    }
}

async fn writer(meta: Arc<dyn MetaStore>, mut rx: mpsc::Receiver<Msg>) {
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        let mut flushes = Vec::new();
        let mut run: Vec<EgressEvent> = Vec::new();
        let mut key: Option<(TenantId, SandboxId)> = None;
        for msg in buf.drain(..) {
            match msg {
                Msg::Flush(done) => flushes.push(done),
                Msg::Event(e) => {
                    let (t, s, ev) = *e;
                    if key.as_ref().is_some_and(|(kt, ks)| (kt, ks) != (&t, &s)) {
                        write(&*meta, key.take(), &mut run).await;
                    }
                    key = Some((t, s));
                    run.push(ev);
                }
            }
        }
        write(&*meta, key, &mut run).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write(
    meta: &dyn MetaStore,
    key: Option<(TenantId, SandboxId)>,
    run: &mut Vec<EgressEvent>,
) {
    if let Some((t, s)) = key {
        if let Err(e) = meta.append_egress(&t, &s, run).await {
            tracing::error!(sandbox = %s, "writing {} egress log entries: {e}", run.len());
        }
    }
    run.clear();
}

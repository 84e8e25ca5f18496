//! Live sandboxes: start (with /input hydrated), look up (tenant-scoped),
//! destroy (usage recorded), expire, and reap a dead predecessor's.

use crate::service::audit::{Action, Audit};
use crate::service::{Error, Result};
pub use quota::Footprint;
use quota::Totals;
pub use sample::Sample;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_protocol::Client;
use warden_runtime::{Runtime, Sandbox};
use warden_spec::{Isolation, SandboxSpec};
use warden_store::{
    now_ms, FileMeta, MetaStore, Millis, ObjectKind, SandboxId, SandboxRecord, SandboxState,
    SnapshotId, TenantId, TenantStore, Usage,
};

mod capacity;
mod checkpoint;
pub mod quota;
mod sample;
use capacity::start_error;
pub use checkpoint::FromCheckpoint;
use checkpoint::THAW_DEADLINE;

/// One running sandbox.
pub struct Live {
    pub id: SandboxId,
    pub tenant: TenantId,
    /// Its limits, counted against the tenant's quotas, and whether it
    /// holds one of the tenant's `max_sandboxes` slots (review jobs' do
    /// not).
    footprint: Footprint,
    takes_slot: bool,
    pub client: Client,
    /// Masks the values of the secrets it was given in the output the API
    /// passes on; None when it has none.
    pub masker: Option<Arc<crate::secrets::Masker>>,
    /// Its ports are served without a token (see `CreateSandbox`).
    pub public_ports: bool,
    /// Its volumes stay mounted while it lives (the last holder's drop
    /// unmounts one); let go at its teardown, whoever still holds the
    /// `Live`.
    volumes: Mutex<Vec<warden_runtime::volume::Lease>>,
    sandbox: Mutex<Option<Box<dyn Sandbox>>>,
    /// The egress proxy of a sandbox with an allowlist.
    egress: Mutex<Option<warden_egress::Egress>>,
    expires_at: AtomicI64,
    started: Instant,
    /// CPU time at the previous [`Live::sample`], and when: a CPU rate is
    /// measured between two samples.
    cpu_mark: Mutex<(Instant, u64)>,
    dir: PathBuf,
    /// Why the sandbox was destroyed, set as teardown begins: whoever still
    /// holds this `Live` (a review job, a stream) learns why its requests
    /// now fail.
    ended: std::sync::OnceLock<String>,
    /// Whether its code interpreter has been started (`crate::code`); held
    /// while one is starting, so it starts once.
    pub interpreter: tokio::sync::Mutex<bool>,
    /// When its set-up was over (wall clock, ns since the epoch, less
    /// [`CTIME_SLACK_NS`]): what changed since is what a snapshot takes.
    pub changes_since_ns: i64,
    /// The environment it was created with, secrets' values excluded (a
    /// pause keeps it for the resume; secrets are read again then).
    pub plain_env: std::collections::BTreeMap<String, String>,
    /// Held while it is being paused, so two pauses do not race.
    pub lifecycle: tokio::sync::Mutex<()>,
    pause_on_timeout: bool,
    /// What its files were when it was resumed from a filesystem pause,
    /// whose snapshot it keeps while it runs (see `snapshots::base`).
    base: Mutex<Option<Arc<crate::snapshots::base::Base>>>,
    /// Its timeout is being handled (a pause takes a while; the expiry
    /// loop starts it once).
    expiring: std::sync::atomic::AtomicBool,
}

/// File times come from the kernel's coarse clock, up to a tick behind
/// the one read here: a file made just after the start must still count
/// as made after it.
const CTIME_SLACK_NS: i64 = 20_000_000;

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Live {
    /// Whether it is an interactive sandbox (a review job's is not).
    /// Its memory limit in bytes (0: none).
    pub fn memory_limit(&self) -> u64 {
        self.footprint.memory
    }

    pub fn takes_slot(&self) -> bool {
        self.takes_slot
    }

    /// What its files were when it was resumed (see `snapshots::base`).
    pub fn base(&self) -> Option<Arc<crate::snapshots::base::Base>> {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets its base (whose snapshot the caller deletes).
    pub fn drop_base(&self) {
        self.base.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Why the sandbox was destroyed (`deleted`, `timeout`, `server
    /// shutdown`, ...); None while it is live.
    pub fn end_reason(&self) -> Option<&str> {
        self.ended.get().map(String::as_str)
    }

    pub fn expires_at(&self) -> Millis {
        self.expires_at.load(Ordering::Relaxed)
    }

    /// Whether the sandbox has an egress proxy (it was created with an
    /// allowlist, possibly empty) whose rules can change.
    pub fn has_egress(&self) -> bool {
        self.egress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Replaces the egress rules of a running sandbox; false if it has no
    /// egress proxy (it was created with network `none`).
    pub fn set_egress_rules(&self, rules: Vec<warden_spec::EgressRule>) -> bool {
        match &*self.egress.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => {
                e.set_rules(rules);
                true
            }
            None => false,
        }
    }
}

/// What a sandbox start needs (from the sandboxes service or the job
/// worker): its spec, inputs, record, and whether it takes a sandbox slot.
pub struct SandboxLaunch {
    pub spec: SandboxSpec,
    pub files: Vec<FileMeta>,
    pub record: SandboxRecord,
    /// Whether it takes one of the tenant's `max_sandboxes` slots
    /// (interactive sandboxes do; a review job's is bounded by the queue's
    /// per-tenant concurrency). Its memory, CPUs and PIDs count against
    /// the tenant's quotas either way.
    pub takes_slot: bool,
    /// The masker for the values of the secrets in `spec.env`, if any.
    pub masker: Option<Arc<crate::secrets::Masker>>,
    /// Its ports are served without a token (see `CreateSandbox`).
    pub public_ports: bool,
    /// Holds on the volumes it mounts, kept for its life.
    pub volumes: Vec<warden_runtime::volume::Lease>,
    /// A snapshot's files to put in before anyone can reach it.
    pub restore: Option<crate::snapshots::Manifest>,
    /// The record exists, paused: it is moved back to running rather than
    /// inserted.
    pub resuming: bool,
    /// `spec.env` without the secrets' values (see [`Live::plain_env`]).
    pub plain_env: std::collections::BTreeMap<String, String>,
    /// Its timeout pauses it (through [`Manager::on_timeout_pause`]).
    pub pause_on_timeout: bool,
    /// It goes on from a checkpoint (a pause that kept its memory) rather
    /// than starting afresh.
    pub from_checkpoint: Option<FromCheckpoint>,
    /// `restore` is this pause snapshot's, which the caller keeps while
    /// the sandbox runs: what its files are once restored is remembered
    /// (its base), and the snapshot is given to [`Manager::on_base_end`]
    /// when the sandbox ends; the memory that takes is charged where
    /// [`crate::snapshots::base::KeepBase`] says.
    pub keep_base: Option<crate::snapshots::base::KeepBase>,
}

/// How a sandbox ended, from its cgroup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ended {
    pub usage: Usage,
    /// The kernel's OOM killer ran in the sandbox.
    pub oom_killed: bool,
}

pub struct Manager {
    runtime: Arc<dyn Runtime>,
    meta: Arc<dyn MetaStore>,
    live: Mutex<HashMap<SandboxId, Arc<Live>>>,
    /// Per-sandbox host directories (`<data>/sandboxes/<id>/input`).
    work_dir: PathBuf,
    /// This process's identity in sandbox records.
    pub owner: String,
    pub egress: Arc<crate::egress::EgressHub>,
    /// Sandboxes admitted but not yet recorded as running, per tenant: the
    /// quota check counts them, so concurrent creates cannot together
    /// squeeze past a limit, and no lock is held while sandboxes start.
    admitting: Mutex<HashMap<TenantId, Totals>>,
    /// Sandboxes this node runs at once (`[server] max_sandboxes`), and
    /// those starting now (counted against it with the live ones).
    capacity: usize,
    starting: Mutex<usize>,
    /// Told the id of each sandbox as it ends (after it is marked ended):
    /// what front doors keep per sandbox is dropped there.
    on_end: Mutex<Vec<EndHook>>,
    /// Pauses a sandbox whose timeout pauses it (see
    /// [`Manager::on_timeout_pause`]).
    pauser: Mutex<Option<PauseHook>>,
    /// Lets go of an ended sandbox's base (see [`Manager::on_base_end`]).
    base_end: Mutex<Option<BaseHook>>,
}

/// See [`Manager::on_end`].
pub type EndHook = Box<dyn Fn(&SandboxId) + Send + Sync>;

/// See [`Manager::on_base_end`].
pub type BaseHook =
    Arc<dyn Fn(TenantId, SnapshotId) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// See [`Manager::on_timeout_pause`]: whether it paused the sandbox.
pub type PauseHook =
    Arc<dyn Fn(TenantId, SandboxId) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

impl Manager {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        meta: Arc<dyn MetaStore>,
        work_dir: PathBuf,
        egress: Arc<crate::egress::EgressHub>,
    ) -> Manager {
        Manager {
            runtime,
            meta,
            live: Mutex::default(),
            work_dir,
            egress,
            owner: format!("srv-{:016x}", rand::random::<u64>()),
            admitting: Default::default(),
            capacity: usize::MAX,
            starting: Mutex::new(0),
            on_end: Mutex::default(),
            pauser: Mutex::default(),
            base_end: Mutex::default(),
        }
    }

    /// Sets what deletes the snapshot a resumed sandbox kept as its base
    /// (the service layer's), called as such a sandbox ends.
    pub fn on_base_end(&self, hook: BaseHook) {
        *self.base_end.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Sets what pauses a sandbox created to pause at its timeout (the
    /// service layer's pause, which the manager does not know); one that
    /// is not paused is destroyed as any other at its timeout.
    pub fn on_timeout_pause(&self, hook: PauseHook) {
        *self.pauser.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Calls `hook` with the id of every sandbox that ends from now on, as
    /// its teardown begins.
    pub fn on_end(&self, hook: EndHook) {
        self.on_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Arc<Live>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live sandbox by id alone, for a caller that proved its right to it
    /// another way (an envd access token names exactly one sandbox).
    pub fn get_unscoped(&self, id: &SandboxId) -> Option<Arc<Live>> {
        self.map().get(id).cloned()
    }

    /// A live sandbox of this tenant; another tenant's id is "not there".
    pub fn get(&self, tenant: &TenantId, id: &SandboxId) -> Option<Arc<Live>> {
        self.map().get(id).filter(|l| &l.tenant == tenant).cloned()
    }

    pub fn running_count(&self) -> usize {
        self.map().len()
    }

    /// Every live sandbox, of every tenant (for a credential that names
    /// its sandbox only by what it was derived from: a signed file URL).
    pub fn all_running(&self) -> Vec<Arc<Live>> {
        self.map().values().cloned().collect()
    }

    pub fn running_of(&self, tenant: &TenantId) -> Vec<SandboxId> {
        self.map()
            .values()
            .filter(|l| &l.tenant == tenant)
            .map(|l| l.id.clone())
            .collect()
    }

    /// Marks the previous process's sandboxes lost and clears their
    /// directories (the runtime reaped their cgroups when it started).
    pub async fn reap_predecessors(&self) -> anyhow::Result<usize> {
        let lost = self.meta.reap_foreign(&self.owner).await?;
        for sb in &lost {
            self.audit(
                &sb.tenant_id,
                Audit {
                    actor: "system",
                    action: Action::SandboxLost,
                    target: sb.id.as_str(),
                    outcome: "server restarted",
                },
            )
            .await;
        }
        if let Ok(entries) = std::fs::read_dir(&self.work_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(lost.len())
    }

    async fn audit(&self, tenant: &TenantId, entry: Audit<'_>) {
        // Teardown and reaping happen whatever the audit does (expiry and
        // restarts have no request to fail); `append` logged a failure.
        let _ = crate::service::audit::append(self.meta.as_ref(), tenant, entry).await;
    }

    /// How each isolation tier stands on this server, opening any not
    /// checked yet (blocking: call it off the async threads).
    pub fn probe_tiers(&self) -> Vec<warden_runtime::tiers::TierStatus> {
        self.runtime.probe()
    }

    /// Refuses a tier this server cannot run (a 400 naming the reason),
    /// opening it first if it has not been checked yet.
    pub async fn check_isolation(&self, isolation: Isolation) -> Result<()> {
        let tiers = self.runtime.clone();
        tokio::task::spawn_blocking(move || tiers.check(isolation))
            .await
            .map_err(|e| Error::internal("checking the isolation tier", e))?
            .map_err(start_error)
    }

    /// Checks quotas, hydrates /input, starts the sandbox, records it.
    pub async fn create(&self, store: &TenantStore, new: SandboxLaunch) -> Result<SandboxRecord> {
        let t0 = Instant::now();
        let tenant = store
            .tenant()
            .await?
            .ok_or_else(|| Error::not_found("tenant"))?;
        let footprint = Footprint::of(&new.spec);
        // The tenant's quotas first (a 429 is theirs to fix), then the
        // node's room (a 503: nobody's fault, try later).
        let _admission = self.admit(store.tenant_id(), tenant.quotas, footprint, new.takes_slot)?;
        let _place = self.reserve()?;
        let id = new.record.id.clone();
        let dir = self.work_dir.join(id.as_str());
        let mut spec = new.spec;
        if !new.files.is_empty() {
            let input = dir.join("input");
            hydrate(store, &new.files, &input).await.inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&dir);
            })?;
            spec.input_dir = Some(input.to_string_lossy().into_owned());
        }
        let scope = crate::snapshots::Scope::of(
            spec.writable_root,
            spec.mounts.iter().map(|m| m.target.clone()),
        );
        let image = new.from_checkpoint.as_ref().map(|c| c.image.clone());
        let started = self
            .start(spec, store.tenant_id(), &id, new.masker.clone(), image)
            .await;
        let (sandbox, client, egress) = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        // Before the restore: what it writes is the sandbox's own.
        let changes_since_ns = match &new.from_checkpoint {
            Some(c) => c.changes_since_ns,
            None => wall_ns() - CTIME_SLACK_NS,
        };
        let mut base = None;
        if let Some(manifest) = &new.restore {
            let restored =
                crate::snapshots::restore::restore(&client, store, manifest, &scope).await;
            if let Err(e) = restored {
                drop(egress);
                let _ = tokio::task::spawn_blocking(move || sandbox.destroy()).await;
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            if let Some(keep) = new.keep_base {
                base = crate::snapshots::base::Base::observe(
                    &client,
                    manifest,
                    &scope,
                    changes_since_ns,
                    keep,
                )
                .await
                .unwrap_or_else(|e| {
                    // Only speed is lost: its next pause reads every file.
                    tracing::warn!(sandbox = %id, "remembering its restored files: {e}");
                    None
                })
                .map(Arc::new);
            }
        }
        let mut record = new.record;
        record.owner = self.owner.clone();
        record.state = SandboxState::Running;
        let recorded = if new.resuming {
            match store
                .resume_sandbox(&record.id, &self.owner, record.expires_at)
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::conflict(
                    "the sandbox is no longer paused (resumed or deleted meanwhile)",
                )),
                Err(e) => Err(e.into()),
            }
        } else {
            store.insert_sandbox(&record).await.map_err(Error::from)
        };
        if let Err(e) = recorded {
            drop(egress);
            let _ = tokio::task::spawn_blocking(move || sandbox.destroy()).await;
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let live = Arc::new(Live {
            id: id.clone(),
            tenant: store.tenant_id().clone(),
            footprint,
            takes_slot: new.takes_slot,
            client,
            masker: new.masker,
            public_ports: new.public_ports,
            volumes: Mutex::new(new.volumes),
            sandbox: Mutex::new(Some(sandbox)),
            egress: Mutex::new(egress),
            expires_at: AtomicI64::new(record.expires_at),
            started: Instant::now(),
            cpu_mark: Mutex::new((Instant::now(), 0)),
            dir,
            ended: Default::default(),
            interpreter: tokio::sync::Mutex::new(
                new.from_checkpoint.as_ref().is_some_and(|c| c.interpreter),
            ),
            changes_since_ns,
            plain_env: new.plain_env,
            lifecycle: Default::default(),
            pause_on_timeout: new.pause_on_timeout,
            base: Mutex::new(base),
            expiring: Default::default(),
        });
        self.map().insert(id, live);
        crate::metrics::sandbox_started(t0.elapsed().as_secs_f64());
        Ok(record)
    }

    async fn start(
        &self,
        spec: SandboxSpec,
        tenant: &TenantId,
        id: &SandboxId,
        masker: Option<Arc<crate::secrets::Masker>>,
        checkpoint: Option<PathBuf>,
    ) -> Result<(Box<dyn Sandbox>, Client, Option<warden_egress::Egress>)> {
        let rt = self.runtime.clone();
        let rules = spec.network.rules().map(<[_]>::to_vec);
        let restoring = checkpoint.is_some();
        let mut sandbox = tokio::task::spawn_blocking(move || match checkpoint {
            Some(image) => rt.restore(&spec, &image),
            None => rt.start(&spec),
        })
        .await
        .map_err(|e| Error::internal("starting a sandbox", e))?
        .map_err(start_error)?;
        let connect = async {
            let control = sandbox
                .take_control()
                .ok_or_else(|| anyhow::anyhow!("no control channel"))?;
            control.set_nonblocking(true)?;
            let stream = tokio::net::UnixStream::from_std(control)?;
            let client = if restoring {
                tokio::time::timeout(THAW_DEADLINE, Client::reattach(stream))
                    .await
                    .map_err(|_| anyhow::anyhow!("the restored sandbox did not answer"))??
            } else {
                // Restores hand the init their blobs' files (both tiers).
                Client::connect_passing_files(stream).await?
            };
            let egress = match rules {
                Some(rules) => {
                    let listener = sandbox
                        .take_egress_listener()
                        .ok_or_else(|| anyhow::anyhow!("no egress listener"))?;
                    Some(self.egress.proxy(tenant, id, listener, rules, masker)?)
                }
                None => None,
            };
            Ok::<_, anyhow::Error>((client, egress))
        };
        match connect.await {
            Ok((client, egress)) => Ok((sandbox, client, egress)),
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || sandbox.destroy()).await;
                Err(capacity::connect_error(e))
            }
        }
    }

    pub fn extend(&self, live: &Live, expires_at: Millis) {
        live.expires_at.store(expires_at, Ordering::Relaxed);
    }

    /// Destroys a live sandbox and records its end; None if it was not
    /// live here (already gone).
    pub async fn destroy(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
        actor: &str,
    ) -> Option<Ended> {
        let live = {
            let mut map = self.map();
            match map.get(id) {
                Some(l) if &l.tenant == tenant => map.remove(id),
                _ => None,
            }
        }?;
        let _ = live.ended.set(reason.to_string());
        for hook in self.on_end.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            hook(id);
        }
        // Whatever snapshot it ends in (a pause) holds its own blobs by now.
        let base = live.base.lock().unwrap_or_else(|e| e.into_inner()).take();
        let hook = self
            .base_end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let (Some(base), Some(hook)) = (base, hook) {
            hook(tenant.clone(), base.snapshot.clone()).await;
        }
        // Requests in flight and any made later fail now rather than wait
        // for an init that is about to die (and whose end of the channel
        // may outlive it).
        live.client.close();
        // The proxy's listener keeps the sandbox's network namespace alive.
        drop(live.egress.lock().unwrap_or_else(|e| e.into_inner()).take());
        let sandbox = live
            .sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let wall = live.started.elapsed().as_secs_f64();
        let stats = match sandbox {
            Some(sb) => tokio::task::spawn_blocking(move || sb.destroy())
                .await
                .ok()
                .and_then(|r| r.map_err(|e| tracing::error!(%id, "teardown: {e}")).ok()),
            None => None,
        };
        let usage = Usage {
            cpu_seconds: stats.map(|s| s.cpu_usage_ns as f64 / 1e9).unwrap_or(0.0),
            peak_memory_bytes: stats.map(|s| s.memory_peak_bytes).unwrap_or(0),
            wall_seconds: wall,
        };
        // Its processes are gone: its volumes may be unmounted (or
        // deleted) now.
        let volumes = std::mem::take(&mut *live.volumes.lock().unwrap_or_else(|e| e.into_inner()));
        let dir = live.dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            drop(volumes);
            std::fs::remove_dir_all(dir)
        })
        .await;
        if let Err(e) = self
            .meta
            .end_sandbox(tenant, id, state, reason, Some(usage))
            .await
        {
            tracing::error!(%id, "recording the end of a sandbox: {e}");
        }
        let action = match state {
            SandboxState::TimedOut => Action::SandboxTimeout,
            SandboxState::Failed => Action::SandboxFail,
            SandboxState::Paused => Action::SandboxPause,
            _ => Action::SandboxDelete,
        };
        let entry = Audit {
            actor,
            action,
            target: id.as_str(),
            outcome: reason,
        };
        self.audit(tenant, entry).await;
        crate::metrics::sandbox_ended();
        Some(Ended {
            usage,
            oom_killed: stats.is_some_and(|s| s.oom_kills > 0),
        })
    }

    /// Destroys every sandbox past its expiry; runs until the process ends.
    pub async fn expire_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = now_ms();
            let due: Vec<(TenantId, SandboxId, bool)> = self
                .map()
                .values()
                .filter(|l| l.expires_at() <= now)
                .filter(|l| !l.expiring.swap(true, Ordering::Relaxed))
                .map(|l| (l.tenant.clone(), l.id.clone(), l.pause_on_timeout))
                .collect();
            let pauser = self
                .pauser
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for (t, id, pause) in due {
                let me = self.clone();
                let pauser = pauser.clone().filter(|_| pause);
                tokio::spawn(async move {
                    if let Some(p) = pauser {
                        if p(t.clone(), id.clone()).await {
                            return;
                        }
                    }
                    me.destroy(&t, &id, SandboxState::TimedOut, "timeout", "system")
                        .await;
                });
            }
        }
    }

    /// Destroys every live sandbox (graceful shutdown).
    pub async fn destroy_all(&self, state: SandboxState, reason: &str) {
        let all: Vec<(TenantId, SandboxId)> = self
            .map()
            .values()
            .map(|l| (l.tenant.clone(), l.id.clone()))
            .collect();
        let jobs = all
            .iter()
            .map(|(t, id)| self.destroy(t, id, state, reason, "system"));
        futures::future::join_all(jobs).await;
    }
}

/// Puts each file at `<input>/<name>`: a hard link to the stored object
/// when the store is a local directory (no copy), else a streamed copy.
async fn hydrate(store: &TenantStore, files: &[FileMeta], input: &Path) -> Result<()> {
    tokio::fs::create_dir_all(input)
        .await
        .map_err(|e| Error::internal("preparing /input", e))?;
    for f in files {
        let target = input.join(&f.name);
        if let Some(src) = store.objects().local_path(ObjectKind::Files, f.id.as_str()) {
            if std::fs::hard_link(&src, &target).is_ok() {
                continue;
            }
        }
        let mut stream = store
            .objects()
            .get_stream(ObjectKind::Files, f.id.as_str())
            .await?;
        let mut out = tokio::fs::File::create(&target)
            .await
            .map_err(|e| Error::internal("preparing /input", e))?;
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            out.write_all(&chunk)
                .await
                .map_err(|e| Error::internal("preparing /input", e))?;
        }
        out.flush()
            .await
            .map_err(|e| Error::internal("preparing /input", e))?;
    }
    Ok(())
}

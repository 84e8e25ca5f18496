//! What the in-process server suites share: a runtime that stands in for
//! the kernel's part, and a world of a real SQLite database, object store
//! and manager around it.
//!
//! A "sandbox" of [`FakeRuntime`] is either only a control channel whose
//! far end answers the protocol's handshake ([`Init::Handshake`]: enough
//! for the manager's bookkeeping), or the real `warden-init` binary run as
//! an ordinary host process on that channel ([`Init::Process`]: commands
//! really run, so a review job goes through every one of its states).
//! Neither isolates anything; the kernel's part has its own suites
//! (`crates/cli/tests`).

#![allow(dead_code)] // each suite uses its own part of this

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use warden_runtime::tiers::TierStatus;
use warden_runtime::{Runtime, RuntimeError, Sandbox, SandboxStats};
use warden_server::manager::Manager;
use warden_server::manager::SandboxLaunch;
use warden_server::service::Error;
use warden_spec::{Isolation, SandboxSpec};
use warden_store::{
    now_ms, JobStore, MetaStore, Objects, Quotas, SandboxId, SandboxRecord, SandboxState,
    TenantStore,
};

/// What answers at the far end of a fake sandbox's control channel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// The handshake, then silence until the host closes the channel.
    Handshake,
    /// The real `warden-init`, as a host process (no isolation at all).
    Process,
}

/// Starts fake sandboxes; gVisor is refused.
pub struct FakeRuntime {
    init: Init,
    /// Working directories of `Init::Process` sandboxes go under this.
    scratch: PathBuf,
    pub started: AtomicUsize,
    pub destroyed: Arc<AtomicUsize>,
    /// This many starts fail (a failure of Warden's own: the init did
    /// not start) before one succeeds.
    pub fail_starts: AtomicUsize,
}

impl FakeRuntime {
    pub fn new(init: Init, scratch: &Path) -> FakeRuntime {
        FakeRuntime {
            init,
            scratch: scratch.to_path_buf(),
            started: AtomicUsize::new(0),
            destroyed: Arc::new(AtomicUsize::new(0)),
            fail_starts: AtomicUsize::new(0),
        }
    }
}

pub struct FakeSandbox {
    id: String,
    control: Option<UnixStream>,
    process: Mutex<Option<std::process::Child>>,
    destroyed: Arc<AtomicUsize>,
}

/// The `warden-init` built next to this test (`cargo test --workspace`
/// and `make build` build it).
fn init_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let init = dir.join("warden-init");
    assert!(
        init.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        init.display()
    );
    init
}

fn answer_handshake(inside: UnixStream) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            use tokio::io::AsyncReadExt;
            inside.set_nonblocking(true).expect("nonblocking");
            let mut s = tokio::net::UnixStream::from_std(inside).expect("stream");
            if warden_protocol::codec::handshake(&mut s).await.is_ok() {
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            }
        });
    });
}

/// Runs `warden-init` on `inside` (as its fd 3), in its own process group,
/// with the environment a sandbox of `spec` starts from.
fn start_init(
    spec: &SandboxSpec,
    workdir: &Path,
    inside: UnixStream,
) -> std::io::Result<std::process::Child> {
    std::fs::create_dir_all(workdir)?;
    let config = warden_protocol::InitConfig {
        env: warden_runtime::native::setup::base_env(spec),
        workdir: workdir.display().to_string(),
    };
    let config = serde_json::to_string(&config).map_err(std::io::Error::other)?;
    let fd = inside.as_raw_fd();
    let mut cmd = std::process::Command::new(init_binary());
    cmd.args(["--control-fd", "3", "--config", &config])
        .stdin(std::process::Stdio::null())
        .process_group(0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(inside);
    child
}

/// Every descendant of `pid` (children first found, then theirs).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(c);
                queue.push(c);
            }
        }
    }
    found
}

impl Runtime for FakeRuntime {
    fn start(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, RuntimeError> {
        let failing = self
            .fail_starts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(RuntimeError::Init("a start failed (injected)".into()));
        }
        let (host, inside) = UnixStream::pair()
            .map_err(|e| RuntimeError::Unsupported(format!("socketpair: {e}")))?;
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let id = format!("fake-{n}");
        let process = match self.init {
            Init::Handshake => {
                answer_handshake(inside);
                None
            }
            Init::Process => Some(
                start_init(spec, &self.scratch.join(&id), inside)
                    .map_err(|e| RuntimeError::Init(format!("starting warden-init: {e}")))?,
            ),
        };
        Ok(Box::new(FakeSandbox {
            id,
            control: Some(host),
            process: Mutex::new(process),
            destroyed: self.destroyed.clone(),
        }))
    }

    fn check(&self, isolation: Isolation) -> Result<(), RuntimeError> {
        match isolation {
            Isolation::Native => Ok(()),
            tier => Err(RuntimeError::TierUnavailable {
                tier,
                reason: "not in this test".into(),
            }),
        }
    }

    fn probe(&self) -> Vec<TierStatus> {
        Vec::new()
    }
}

impl FakeSandbox {
    /// Kills the init and everything it started (commands run in sessions
    /// of their own, so a process group would not reach them), then
    /// collects the init.
    fn end(&self) {
        let Some(mut child) = self.process.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        for pid in descendants(child.id()) {
            // SAFETY: a plain system call.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Sandbox for FakeSandbox {
    fn id(&self) -> &str {
        &self.id
    }
    fn take_control(&mut self) -> Option<UnixStream> {
        self.control.take()
    }
    fn take_egress_listener(&mut self) -> Option<std::net::TcpListener> {
        None
    }
    fn stats(&self) -> Result<SandboxStats, RuntimeError> {
        Ok(SandboxStats::default())
    }
    fn kill(&self) {
        self.end();
    }
    fn destroy(self: Box<Self>) -> Result<SandboxStats, RuntimeError> {
        self.end();
        self.destroyed.fetch_add(1, Ordering::SeqCst);
        Ok(SandboxStats::default())
    }
}

impl Drop for FakeSandbox {
    fn drop(&mut self) {
        self.end();
    }
}

/// A database, an object store and a manager over a [`FakeRuntime`], all
/// in one temporary directory.
pub struct World {
    pub dir: tempfile::TempDir,
    pub meta: Arc<dyn MetaStore>,
    pub jobs: Arc<dyn JobStore>,
    pub objects: Objects,
    pub runtime: Arc<FakeRuntime>,
    pub manager: Arc<Manager>,
}

pub async fn world(init: Init, capacity: usize) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(
        warden_store::sqlite::open(&dir.path().join("meta.db"))
            .await
            .expect("database"),
    );
    let meta: Arc<dyn MetaStore> = db.clone();
    let jobs: Arc<dyn JobStore> = db;
    let objects = Objects::local(&dir.path().join("objects")).expect("objects");
    let runtime = Arc::new(FakeRuntime::new(init, &dir.path().join("work")));
    let egress = warden_server::egress::EgressHub::start(meta.clone(), Default::default());
    let manager = Arc::new(
        Manager::new(
            runtime.clone(),
            meta.clone(),
            dir.path().join("sandboxes"),
            egress,
        )
        .with_capacity(capacity),
    );
    World {
        dir,
        meta,
        jobs,
        objects,
        runtime,
        manager,
    }
}

impl World {
    /// The tenant's whole audit chain, in order.
    pub async fn audit(&self, store: &TenantStore) -> Vec<warden_store::AuditEntry> {
        self.meta
            .list_audit(store.tenant_id(), 0, 1000)
            .await
            .expect("audit")
    }

    pub async fn tenant(&self, name: &str, quotas: Quotas) -> TenantStore {
        let t = self.meta.create_tenant(name, quotas).await.expect("tenant");
        TenantStore::new(t.id, self.meta.clone(), &self.objects)
    }

    /// Creates a sandbox asking for `memory_mb` of memory.
    pub async fn create(&self, store: &TenantStore, memory_mb: u64) -> Result<SandboxId, Error> {
        let mut spec = SandboxSpec::default();
        spec.limits.memory_bytes = Some(memory_mb << 20);
        let now = now_ms();
        let record = SandboxRecord {
            id: SandboxId::generate(),
            tenant_id: store.tenant_id().clone(),
            state: SandboxState::Running,
            spec: serde_json::json!({}),
            labels: Default::default(),
            memory_bytes: memory_mb << 20,
            owner: String::new(),
            created_at: now,
            expires_at: now + 60_000,
            ended_at: None,
            end_reason: None,
            usage: None,
        };
        let new = SandboxLaunch {
            spec,
            files: Vec::new(),
            record,
            takes_slot: true,
            masker: None,
            public_ports: false,
            volumes: Vec::new(),
            restore: None,
            resuming: false,
            plain_env: Default::default(),
            pause_on_timeout: false,
            from_checkpoint: None,
            keep_base: None,
        };
        self.manager.create(store, new).await.map(|r| r.id)
    }

    pub async fn delete(&self, store: &TenantStore, id: &SandboxId) {
        let ended = self
            .manager
            .destroy(
                store.tenant_id(),
                id,
                SandboxState::Stopped,
                "deleted",
                "test",
            )
            .await;
        assert!(ended.is_some(), "{id} was not running");
    }
}

/// The server's shared state over `w` (no background loops: a suite starts
/// the ones it tests), with `tune` applied to the default configuration.
pub fn app(
    w: &World,
    tune: impl FnOnce(&mut warden_server::config::Config),
) -> warden_server::state::Shared {
    let mut cfg = warden_server::config::Config {
        data_dir: w.dir.path().to_path_buf(),
        ..Default::default()
    };
    tune(&mut cfg);
    for d in ["logs", "work"] {
        std::fs::create_dir_all(w.dir.path().join(d)).expect("data directories");
    }
    let buffers = warden_server::budget::Buffers::new(cfg.server.buffers_total_bytes);
    Arc::new(warden_server::state::AppState {
        cfg,
        meta: w.meta.clone(),
        jobs: w.jobs.clone(),
        jobs_handle: Default::default(),
        objects: w.objects.clone(),
        admin_hash: [0; 32],
        signing_key: vec![7; 32],
        vault: None,
        sandboxes: w.manager.clone(),
        draining: std::sync::atomic::AtomicBool::new(false),
        buffers,
        volumes: Arc::new(
            warden_runtime::volume::Volumes::open(&w.dir.path().join("volumes"))
                .expect("volume store"),
        ),
    })
}

/// A caller of `store`'s tenant, as an API key of its would be.
pub fn caller(store: &TenantStore) -> warden_server::auth::Caller {
    warden_server::auth::Caller {
        store: store.clone(),
        key_id: warden_store::KeyId::generate(),
    }
}

//! The gVisor backend: each sandbox is a runsc container whose process is
//! the same `warden-init` as on the native tier, speaking the same protocol
//! over a socket, so nothing above the runtime knows which tier it drives.
//!
//! Per sandbox: an OCI bundle (`bundle.rs`) under the state directory, one
//! `runsc run` child that lives as long as the container (`runsc.rs`), and
//! a cgroup at `<cgroup parent>/<id>` that Warden makes and runsc joins. Teardown kills the container, waits for runsc, and removes
//! whatever is left (runsc state, bundle, cgroup).

pub mod bundle;
pub mod egress;
pub mod locale;
pub mod owner;
pub mod platform;
pub mod pool;
pub mod runsc;
mod sandbox;
pub mod skeleton;

pub use sandbox::GvisorSandbox;

use crate::{RuntimeError, Sandbox};
use runsc::Runsc;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_cgroups::Manager;
use warden_spec::{Isolation, SandboxSpec};

#[derive(Debug, thiserror::Error)]
pub enum GvisorError {
    #[error("{what} {path}: {source}")]
    Bundle {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount target {0}")]
    MountTarget(String),
    #[error("config.json: {0}")]
    Json(#[source] serde_json::Error),
    #[error("{what}: {detail}")]
    Runsc { what: &'static str, detail: String },
    #[error(
        "no gVisor platform works on this host ({0}); set WARDEN_GVISOR_PLATFORM to one that does"
    )]
    NoPlatform(String),
    #[error("the sandbox did not start: {0}")]
    Start(String),
}

/// Maps an I/O error on `path` while building a bundle or skeleton.
fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> GvisorError + 'a {
    move |e| GvisorError::Bundle {
        what,
        path: path.to_path_buf(),
        source: e,
    }
}

/// How long a sandbox may take to reach its init before start gives up.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long runsc may take to wind a killed container down.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct GvisorConfig {
    /// The runsc binary; `None` looks for `runsc` in `PATH`.
    pub runsc: Option<PathBuf>,
    /// The `warden-init` binary, bound read-only into every sandbox.
    pub init_path: PathBuf,
    /// Warden's state directory; this backend uses `<state_dir>/gvisor`.
    pub state_dir: PathBuf,
    /// Name of the parent group under each cgroup hierarchy.
    pub cgroup_parent: String,
    /// A gVisor platform (`ptrace`, `systrap`, `kvm`); `None` probes
    /// [`platform::CANDIDATES`] in order.
    pub platform: Option<String>,
    /// Sandboxes kept booted ahead of time once gVisor is in use (see
    /// `pool.rs`); 0 for a one-shot runtime.
    pub prestart: usize,
}

impl Default for GvisorConfig {
    fn default() -> Self {
        GvisorConfig {
            runsc: None,
            init_path: PathBuf::from("warden-init"),
            state_dir: PathBuf::from("/run/warden"),
            cgroup_parent: "warden".into(),
            platform: None,
            prestart: 0,
        }
    }
}

pub struct GvisorRuntime {
    /// First, so it goes first: its waiting sandboxes are removed while
    /// everything they need is still here.
    pool: pool::Pool,
    parts: Arc<Parts>,
}

/// What starting a sandbox needs, shared with the pool's thread.
pub struct Parts {
    runsc: Runsc,
    init_path: PathBuf,
    bundles: PathBuf,
    /// The host image's /etc template (inside the shared skeleton).
    etc_template: PathBuf,
    /// The skeleton root shared by sandboxes that fit it (see `skeleton`).
    shared: skeleton::Shared,
    /// The host's locales as one archive (see `locale`), if it could be made.
    locale: Option<locale::LocaleArchive>,
    cgroups: Manager,
    owner: owner::Owner,
}

fn unavailable(why: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::TierUnavailable {
        tier: Isolation::Gvisor,
        reason: why.to_string(),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn state_err(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::State {
        path: path.to_path_buf(),
        source,
    }
}

impl GvisorRuntime {
    /// Finds runsc, picks a working platform, prepares the state directory
    /// and reaps what a crashed earlier process left behind.
    pub fn new(cfg: GvisorConfig) -> Result<GvisorRuntime, RuntimeError> {
        if !rustix::process::geteuid().is_root() {
            return Err(unavailable("runsc must run as root"));
        }
        let binary = match cfg.runsc.clone().or_else(|| find_in_path("runsc")) {
            Some(b) if b.is_file() => b,
            _ => return Err(unavailable("runsc not found (apt-get install runsc)")),
        };
        let init_path = cfg
            .init_path
            .canonicalize()
            .map_err(|e| RuntimeError::Init(format!("{}: {e}", cfg.init_path.display())))?;
        let dir = cfg.state_dir.join("gvisor");
        let (root, bundles) = (dir.join("runsc"), dir.join("bundles"));
        for d in [&root, &bundles] {
            std::fs::create_dir_all(d).map_err(state_err(d))?;
        }
        // Root's alone: runsc's state and the bundles describe sandboxes
        // (their mounts, limits, hostnames) to no other host user. runsc
        // and its gofer run as root.
        for d in [&dir, &root, &bundles] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .map_err(state_err(d))?;
        }
        let candidates: Vec<String> = match &cfg.platform {
            Some(p) => vec![p.clone()],
            None => platform::CANDIDATES.iter().map(|s| s.to_string()).collect(),
        };
        let platform = platform::choose(&binary, &dir, &candidates).map_err(unavailable)?;
        // Shared with every other runtime on the host, built once (see
        // `skeleton::obtain_shared`).
        let shared = skeleton::obtain_shared(&dir.join("templates"), &init_path)?;
        let locale = locale::obtain(&dir.join("templates"));
        let parts = Parts {
            runsc: Runsc {
                binary,
                root,
                platform,
            },
            init_path,
            bundles,
            etc_template: shared.root.join("etc"),
            shared,
            locale,
            cgroups: Manager::detect(&cfg.cgroup_parent)?,
            owner: owner::Owner::current(),
        };
        parts.reap_leftovers()?;
        let parts = Arc::new(parts);
        Ok(GvisorRuntime {
            pool: pool::Pool::start(cfg.prestart, parts.clone()),
            parts,
        })
    }

    /// The platform in use.
    pub fn platform(&self) -> &str {
        &self.parts.runsc.platform
    }

    /// The runsc invocation this runtime uses (for benchmarks and tests).
    pub fn runsc(&self) -> &Runsc {
        &self.parts.runsc
    }

    /// Removes the containers, bundles and cgroups of sandboxes whose owning
    /// process is gone. Returns how many things were removed.
    pub fn reap_leftovers(&self) -> Result<usize, RuntimeError> {
        self.parts.reap_leftovers()
    }

    /// Ids of the sandboxes booted ahead of time and not handed out yet.
    pub fn prestarted(&self) -> Vec<String> {
        self.pool.ready_ids()
    }
}

impl Parts {
    /// Removes the containers, bundles and cgroups of sandboxes whose owning
    /// process is gone. Returns how many things were removed.
    pub fn reap_leftovers(&self) -> Result<usize, RuntimeError> {
        let mut reaped = 0;
        // runsc keeps a state file per container under its root: with none
        // there, there is nothing to ask it about (`runsc list` is a whole
        // runsc start, a good part of a one-shot `warden run`).
        let any_state = std::fs::read_dir(&self.runsc.root)
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(true);
        let ids = if any_state {
            self.runsc.list()?
        } else {
            Vec::new()
        };
        for id in ids.into_iter().filter(|i| owner::is_orphan(i)) {
            let _ = self.runsc.kill(&id);
            let _ = self.runsc.delete(&id);
            reaped += 1;
        }
        if let Ok(rd) = std::fs::read_dir(&self.bundles) {
            for ent in rd.flatten() {
                if owner::is_orphan(&ent.file_name().to_string_lossy()) {
                    let _ = std::fs::remove_dir_all(ent.path());
                    reaped += 1;
                }
            }
        }
        for name in self.cgroups.list()? {
            if owner::is_orphan(&name) {
                if let Some(cg) = self.cgroups.open(&name)? {
                    cg.destroy()?;
                    reaped += 1;
                }
            }
        }
        Ok(reaped)
    }

    /// Writes the bundle and starts runsc for `spec`: the sandbox boots
    /// and its init waits for its configuration ([`Parts::finish`]).
    /// Nothing is left behind on failure.
    pub fn begin(&self, spec: &SandboxSpec) -> Result<Begun, RuntimeError> {
        self.begin_from(spec, None)
    }

    /// Starts a sandbox for `spec` from the checkpoint in `image` (see
    /// [`crate::Runtime::restore`]). Its init is configured already and
    /// frozen: the caller's `Thaw` on the control channel is its first
    /// sign of life. Nothing is left behind on failure.
    pub fn restore(
        self: &Arc<Self>,
        spec: &SandboxSpec,
        image: &Path,
    ) -> Result<GvisorSandbox, RuntimeError> {
        let begun = self.begin_from(spec, Some(image))?;
        Ok(GvisorSandbox::from_begun(self, begun))
    }

    /// [`Parts::begin`], or with `from` a restore of that checkpoint.
    fn begin_from(&self, spec: &SandboxSpec, from: Option<&Path>) -> Result<Begun, RuntimeError> {
        let id = self.owner.new_id();
        let dir = self.bundles.join(&id);
        match self.boot(spec, &id, &dir, from) {
            Ok((control, child, egress)) => Ok(Begun {
                id,
                dir,
                control,
                child,
                egress,
            }),
            Err(e) => {
                let _ = self.runsc.delete(&id);
                let _ = std::fs::remove_dir_all(&dir);
                if let Ok(Some(cg)) = self.cgroups.open(&id) {
                    let _ = cg.destroy();
                }
                Err(e)
            }
        }
    }

    fn boot(
        &self,
        spec: &SandboxSpec,
        id: &str,
        dir: &Path,
        from: Option<&Path>,
    ) -> Result<Booted, RuntimeError> {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(state_err(dir))?;
        // Made before runsc sees it, so runsc joins it and leaves it alone:
        // its usage (peak memory, OOM kills) stays readable after the
        // container has ended, until `destroy` removes it.
        let l = &spec.limits;
        self.cgroups.create(
            id,
            &warden_cgroups::Limits {
                memory_bytes: l.memory_bytes,
                memory_swap_bytes: l.swap_bytes,
                cpu_millicores: l.cpu_millicores,
                pids_max: l.pids.map(|p| p + bundle::GVISOR_HOST_THREADS),
            },
        )?;
        let inputs = bundle::Inputs {
            init_path: &self.init_path,
            etc_template: &self.etc_template,
            cgroups_path: format!("/{}/{id}", self.cgroups.parent()),
            shared: Some(&self.shared),
            locale: self.locale.as_ref().map(|l| l.dir.as_path()),
        };
        bundle::write(dir, spec, &inputs)?;
        let (host, guest) = UnixStream::pair().map_err(state_err(dir))?;
        let log_path = dir.join(RUNSC_LOG);
        let log = std::fs::File::create(&log_path).map_err(state_err(&log_path))?;
        let (netns, egress) = match spec.network.rules() {
            Some(_) => {
                let (ns, l) = egress::netns_with_listener(warden_spec::EGRESS_PROXY_PORT).map_err(
                    |source| GvisorError::Bundle {
                        what: "network namespace for the egress proxy of",
                        path: dir.to_path_buf(),
                        source,
                    },
                )?;
                (Some(ns), Some(l))
            }
            None => (None, None),
        };
        let overlay = bundle::overlay(spec);
        let child = self
            .runsc
            .run(dir, id, guest.into(), log, netns, overlay, from)?;
        Ok((host, child, egress))
    }

    /// Hands the init of `begun` its configuration for `spec` and waits
    /// until it serves. On failure the sandbox is removed, and the error
    /// carries the last line runsc logged.
    pub fn finish(
        self: &Arc<Self>,
        begun: Begun,
        spec: &SandboxSpec,
    ) -> Result<GvisorSandbox, RuntimeError> {
        let log_path = begun.dir.join(RUNSC_LOG);
        let control = &begun.control;
        let ready = send_init_config(control, &bundle::init_config(spec), START_DEADLINE)
            .and_then(|()| wait_ready(control, START_DEADLINE));
        let sandbox = GvisorSandbox::from_begun(self, begun);
        match ready {
            Ok(()) => Ok(sandbox),
            Err(why) => {
                let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                let said = said.lines().last().unwrap_or("").trim().to_string();
                // Killed and removed.
                drop(sandbox);
                Err(GvisorError::Start(format!("{why}; runsc said: {said}")).into())
            }
        }
    }
}

impl Begun {
    /// Has the init of this sandbox (still waiting for its configuration)
    /// warm it up, and waits until it has: see `codec::WARM_UP`. For a
    /// pool's sandbox, before it is handed out; a sandbox that fails this
    /// is not handed out. The wait covers the sandbox's boot too (`begin`
    /// returns once runsc is started), so it is as long as a start's,
    /// `START_DEADLINE`; it is read in short slices so that `give_up` (the
    /// pool closing) ends it early.
    pub fn warm_up(&self, give_up: impl Fn() -> bool) -> Result<(), String> {
        use std::io::{ErrorKind, Read, Write};
        use warden_protocol::codec::{WARMED, WARM_UP};
        const SLICE: Duration = Duration::from_millis(100);
        let failed = |why: String| {
            let log = std::fs::read_to_string(self.dir.join(RUNSC_LOG)).unwrap_or_default();
            let said = log.lines().last().unwrap_or("").trim().to_string();
            format!("warming up sandbox {}: {why}; runsc said: {said}", self.id)
        };
        let sock = &self.control;
        let mut rw = sock;
        // The request is 4 bytes into an empty socket buffer: it never waits.
        sock.set_write_timeout(Some(SLICE))
            .and_then(|()| rw.write_all(&WARM_UP))
            .and_then(|()| sock.set_read_timeout(Some(SLICE)))
            .map_err(|e| failed(e.to_string()))?;
        let started = Instant::now();
        let mut answer = [0u8; 4];
        let mut got = 0;
        while got < answer.len() {
            match rw.read(&mut answer[got..]) {
                Ok(0) => return Err(failed("the init ended its control channel".into())),
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(e.to_string())),
            }
            if got < answer.len() && give_up() {
                return Err(failed("given up (the pool is closing)".into()));
            }
            if got < answer.len() && started.elapsed() > START_DEADLINE {
                return Err(failed(format!(
                    "no answer within {}s",
                    START_DEADLINE.as_secs()
                )));
            }
        }
        if answer != WARMED {
            return Err(failed(format!("the init answered {answer:?}")));
        }
        sock.set_write_timeout(None)
            .and_then(|()| sock.set_read_timeout(None))
            .map_err(|e| failed(e.to_string()))
    }
}

/// runsc's log in a sandbox's bundle directory.
const RUNSC_LOG: &str = "runsc.log";

type Booted = (UnixStream, Child, Option<std::net::TcpListener>);

/// A sandbox whose runsc is started and whose init waits for its
/// configuration.
pub struct Begun {
    pub id: String,
    dir: PathBuf,
    control: UnixStream,
    /// `runsc run`, alive as long as the container.
    child: Child,
    /// The egress proxy's listener in the sandbox's namespace (allowlist).
    egress: Option<std::net::TcpListener>,
}

/// Sends the init its configuration (the commands' environment, secrets
/// included) over the control channel, the one place it goes: not the
/// bundle, not an argv (see `bundle::INIT_ARGV`). The socket buffers it
/// until the init reads it; a larger one waits for the init, at most
/// `limit`.
fn send_init_config(
    sock: &UnixStream,
    cfg: &warden_protocol::InitConfig,
    limit: Duration,
) -> Result<(), String> {
    use std::io::Write;
    let bytes = warden_protocol::codec::encode_init_config(cfg)
        .map_err(|e| format!("the init's configuration: {e}"))?;
    let mut w = sock;
    sock.set_write_timeout(Some(limit))
        .and_then(|()| w.write_all(&bytes))
        .and_then(|()| sock.set_write_timeout(None))
        .map_err(|e| format!("sending the init its configuration: {e}"))
}

/// Waits until the init has written its first bytes on `sock` (its
/// preamble, or its reason for failing), without consuming them.
fn wait_ready(sock: &UnixStream, limit: Duration) -> Result<(), String> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(sock, PollFlags::IN)];
    let timeout = rustix::event::Timespec {
        tv_sec: limit.as_secs() as _,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(0) => return Err(format!("no sign of the init within {}s", limit.as_secs())),
        Ok(_) => {}
        Err(e) => return Err(format!("poll: {e}")),
    }
    let mut b = [0u8; 1];
    match rustix::net::recv(sock, &mut b, rustix::net::RecvFlags::PEEK) {
        Ok((n, _)) if n > 0 => Ok(()),
        Ok(_) => Err("the sandbox exited before its init started".into()),
        Err(e) => Err(format!("control channel: {e}")),
    }
}

impl crate::Runtime for GvisorRuntime {
    fn start(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, RuntimeError> {
        spec.validate()?;
        if spec.isolation != Isolation::Gvisor {
            return Err(RuntimeError::Unsupported(format!(
                "the gVisor runtime cannot run isolation {:?}",
                spec.isolation
            )));
        }
        if let Some(waiting) = self.pool.take(spec) {
            match self.parts.finish(waiting.begun, spec) {
                Ok(sandbox) => {
                    tracing::info!("gVisor sandbox {} handed out from the pool", sandbox.id());
                    return Ok(Box::new(sandbox));
                }
                // It died while it waited (or at hand-out): start one now.
                Err(e) => tracing::warn!("a pre-started gVisor sandbox failed at hand-out: {e}"),
            }
        }
        let begun = self.parts.begin(spec)?;
        Ok(Box::new(self.parts.finish(begun, spec)?))
    }

    fn restore(&self, spec: &SandboxSpec, image: &Path) -> Result<Box<dyn Sandbox>, RuntimeError> {
        spec.validate()?;
        if spec.isolation != Isolation::Gvisor {
            return Err(RuntimeError::Unsupported(format!(
                "the gVisor runtime cannot restore isolation {:?}",
                spec.isolation
            )));
        }
        Ok(Box::new(self.parts.restore(spec, image)?))
    }
}

//! The native backend: Linux namespaces, cgroups, Landlock and seccomp on the
//! host kernel. Only the host's side lives here (`zygote` starts and asks
//! the zygote, `spawn` finishes each init's start, `slots`, `templates`,
//! `netns`, `prestart`); what runs in the zygote and in each init before it
//! serves the protocol is the `warden-inside` crate.

pub mod egress;
mod error;
pub(crate) mod filler;
mod filters;
pub mod handles;
pub mod netns;
mod posix_spawn;
pub mod prestart;
pub mod setup;
pub mod slots;
pub mod spawn;
pub mod templates;
pub mod zygote;

use crate::{RuntimeError, Sandbox, SandboxStats};
pub use error::SpawnError;
use slots::{Slot, Slots};
use spawn::InitProcess;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use warden_cgroups::{Cgroup, Manager};
use warden_spec::{Image, Isolation, SandboxSpec};

/// The init binary installed in `dir`: the statically linked
/// `warden-init-static` that `make build` installs (it starts faster), else
/// `warden-init`.
pub fn init_in(dir: &std::path::Path) -> PathBuf {
    let fast = dir.join("warden-init-static");
    if fast.is_file() {
        return fast;
    }
    dir.join("warden-init")
}

/// Where the native runtime keeps its state and finds its init.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The `warden-init` binary (executed before the sandbox's root exists,
    /// so it is read from the host's filesystem).
    pub init_path: PathBuf,
    /// Slot locks and the (always empty) staging directory.
    pub state_dir: PathBuf,
    /// Name of the parent group under each cgroup hierarchy.
    pub cgroup_parent: String,
    /// Turn on the host's cgroup2 `favordynmods` option (see
    /// `warden_cgroups::favor_dynamic_mods`): without it the first sandbox
    /// after an idle second waits 5-18 ms to join its cgroup.
    pub favor_dynmods: bool,
    /// Sandboxes whose first steps (slot, cgroup, init cloned into its
    /// namespaces) are kept taken ahead of time (see `prestart.rs`); 0 for
    /// a one-shot runtime, which would only discard them again.
    pub prestart: usize,
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            init_path: PathBuf::from("warden-init"),
            state_dir: PathBuf::from("/run/warden"),
            cgroup_parent: "warden".into(),
            favor_dynmods: true,
            prestart: prestart::POOL_SIZE,
        }
    }
}

pub struct NativeRuntime {
    /// First, so it goes first: its waiting inits must be killed while
    /// their parent, the zygote, is still there to reap them.
    prestart: prestart::PrestartPool,
    /// The zygote, the network namespace pool, the slots and the cgroups,
    /// shared with the pre-start pool's thread.
    parts: Arc<prestart::Parts>,
    staging: String,
    templates: templates::Templates,
    /// The part of the seccomp policy each init attaches itself (the rest
    /// it inherits from the zygote), compiled once here.
    seccomp: Vec<u8>,
    /// A one-shot runtime's network namespace for its sandbox, made while
    /// the runtime started (never refilled: not a pool).
    spare_netns: std::sync::Mutex<Option<std::os::fd::OwnedFd>>,
    /// A one-shot runtime's slot and cgroup for its sandbox, likewise.
    reserved: std::sync::Mutex<Option<prestart::Reserved>>,
}

impl NativeRuntime {
    /// Checks privileges, prepares the state directory, and reaps whatever a
    /// crashed earlier process left behind.
    pub fn new(cfg: NativeConfig) -> Result<NativeRuntime, RuntimeError> {
        NativeRuntime::open(cfg, None)
    }

    /// A runtime for one sandbox of `spec` (`warden run`): as [`Self::new`]
    /// without pools, and with that sandbox's slot and cgroup made while
    /// the zygote starts, instead of after.
    pub fn one_shot(cfg: NativeConfig, spec: &SandboxSpec) -> Result<NativeRuntime, RuntimeError> {
        let cfg = NativeConfig { prestart: 0, ..cfg };
        NativeRuntime::open(cfg, Some(cgroup_limits(spec)))
    }

    fn open(
        cfg: NativeConfig,
        first: Option<warden_cgroups::Limits>,
    ) -> Result<NativeRuntime, RuntimeError> {
        if !rustix::process::geteuid().is_root() {
            return Err(RuntimeError::NotRoot);
        }
        let init_path = cfg
            .init_path
            .canonicalize()
            .map_err(|e| RuntimeError::Init(format!("{}: {e}", cfg.init_path.display())))?;
        let staging = cfg.state_dir.join("root");
        std::fs::create_dir_all(&staging).map_err(|e| RuntimeError::State {
            path: staging.clone(),
            source: e,
        })?;
        let one_shot = cfg.prestart == 0;
        // The zygote's start (an exec of the init, which then attaches its
        // seccomp filter, compiled here while the init is being loaded)
        // and, for a one-shot runtime, its one sandbox's network namespace
        // are made on other threads while this one gets the templates,
        // slots and cgroups ready: a `warden run` waits for the slowest of
        // them instead of their sum.
        let (zygote, spare, rest) = std::thread::scope(|s| {
            let zygote = s.spawn(|| -> Result<_, RuntimeError> {
                let unconfined = zygote::Zygote::spawn(&init_path)?;
                let seccomp = filters::obtain(&cfg.state_dir.join("templates"))?;
                let r = (unconfined.confine(&seccomp.inherited)?, seccomp.own);
                Ok(r)
            });
            let spare = one_shot.then(|| s.spawn(netns::fresh_on_this_thread));
            let rest = (|| -> Result<_, RuntimeError> {
                if cfg.favor_dynmods {
                    if let Err(e) = warden_cgroups::favor_dynamic_mods() {
                        tracing::warn!(
                            "cannot enable cgroup favordynmods (sandbox starts may be slower): {e}"
                        );
                    }
                }
                let templates = templates::prepare(&cfg.state_dir, templates::PerSandbox::Links)?;
                let slots = Arc::new(Slots::open(&cfg.state_dir)?);
                // Killing a sandbox's init ends its whole PID namespace, so
                // the v1 freezer would add nothing but a directory per
                // sandbox.
                let cgroups = Manager::detect(&cfg.cgroup_parent)?.without_freezer();
                // Before anything is pre-started in the slots they free.
                reap_leftovers(&slots, &cgroups)?;
                // Only a head start: if it fails, the start tries again and
                // reports why.
                let reserved = first.and_then(|l| {
                    prestart::Reserved::take(&slots, &cgroups, &l)
                        .map_err(|e| tracing::debug!("reserving a slot ahead: {e}"))
                        .ok()
                });
                Ok((templates, slots, cgroups, reserved))
            })();
            let z = zygote.join();
            let sp = spare.map(|h| h.join());
            (z, sp, rest)
        });
        let (zygote, own_filter) =
            zygote.map_err(|_| RuntimeError::Init("starting the zygote panicked".into()))??;
        let (templates, slots, cgroups, reserved) = rest?;
        // Only a head start: without it the clone makes the namespace.
        let spare = match spare {
            Some(Ok(Ok(ns))) => Some(ns),
            _ => None,
        };
        let parts = Arc::new(prestart::Parts {
            zygote: Arc::new(zygote),
            // A one-shot runtime keeps no pools: its one sandbox would take
            // one namespace and the thread would make the rest (and the
            // kernel tear them down) for nothing.
            netns: Arc::new(netns::NetnsPool::start(if one_shot {
                0
            } else {
                netns::POOL_SIZE
            })),
            slots,
            cgroups,
        });
        let defaults = cgroup_limits(&SandboxSpec::default());
        Ok(NativeRuntime {
            prestart: prestart::PrestartPool::start(cfg.prestart, parts.clone(), defaults),
            parts,
            staging: staging.to_string_lossy().into_owned(),
            templates,
            seccomp: own_filter.to_bytes(),
            spare_netns: std::sync::Mutex::new(spare),
            reserved: std::sync::Mutex::new(reserved),
        })
    }

    /// Cgroup names of the sandboxes pre-started and not yet used.
    pub fn prestarted_cgroups(&self) -> Vec<String> {
        self.prestart.ready()
    }

    pub fn cgroup_mode(&self) -> warden_cgroups::Mode {
        self.parts.cgroups.mode()
    }

    /// Destroys the cgroup (and so every process) of each slot whose owner
    /// is gone. Returns how many were reaped.
    pub fn reap_leftovers(&self) -> Result<usize, RuntimeError> {
        reap_leftovers(&self.parts.slots, &self.parts.cgroups)
    }
}

fn reap_leftovers(slots: &Slots, cgroups: &Manager) -> Result<usize, RuntimeError> {
    let mut reaped = 0;
    for name in cgroups.list()? {
        let Some(index) = slots::parse_cgroup_name(&name) else {
            continue;
        };
        // Holding the slot proves no live process owns the cgroup.
        if let Some(_slot) = slots.try_acquire(index)? {
            if let Some(cg) = cgroups.open(&name)? {
                cg.destroy()?;
                reaped += 1;
            }
        }
    }
    Ok(reaped)
}

/// The cgroup limits a sandbox of `spec` gets.
fn cgroup_limits(spec: &SandboxSpec) -> warden_cgroups::Limits {
    let l = &spec.limits;
    warden_cgroups::Limits {
        memory_bytes: l.memory_bytes,
        memory_swap_bytes: l.swap_bytes,
        cpu_millicores: l.cpu_millicores,
        // One more than asked: the init itself is a process.
        pids_max: l.pids.map(|p| p + 1),
    }
}

impl crate::Runtime for NativeRuntime {
    /// The zygote exits while the sandbox runs (its exit and collection
    /// are otherwise the last thing a `warden run` waits for).
    fn seal(&self) {
        self.parts.zygote.retire();
    }

    fn start(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, RuntimeError> {
        spec.validate()?;
        if spec.isolation != Isolation::Native {
            return Err(RuntimeError::Unsupported(format!(
                "the native runtime cannot run isolation {:?}",
                spec.isolation
            )));
        }
        let image_etc = match &spec.image {
            Image::Host => None,
            Image::Dir(d) => Some(templates::obtain_image_etc(
                &self.templates.dir,
                std::path::Path::new(d),
            )?),
        };
        let limits = cgroup_limits(spec);
        let first = match self.prestart.take(&limits) {
            Some(ready) => ready,
            None => {
                let spare = || self.spare_netns.lock().ok().and_then(|mut n| n.take());
                let netns = self.parts.netns.take().or_else(spare);
                let reserved = self
                    .reserved
                    .lock()
                    .ok()
                    .and_then(|mut r| r.take())
                    .filter(|r| r.fits(&limits));
                match reserved {
                    Some(r) => prestart::Prestarted::launch(&self.parts, netns, r)?,
                    None => prestart::Prestarted::make(&self.parts, netns, &limits)?,
                }
            }
        };
        let prestart::Prestarted { slot, cgroup, init } = first;
        let mut setup = setup::describe(spec, &self.staging, &self.templates);
        if let Some(entry) = &image_etc {
            setup.etc_template = entry.tree().to_string_lossy().into_owned();
        }
        let started = (|| {
            // Opened by us, root, whatever the modes of the directories
            // above them (see `handles.rs`).
            let paths = handles::open_for(init.pid(), &mut setup)?;
            let json = serde_json::to_vec(&setup).map_err(|e| SpawnError::Sys {
                what: "encode the set-up",
                source: std::io::Error::other(e),
            })?;
            let message = warden_inside::wire::encode_message(&json, &self.seccomp);
            // Before "go": the proxy's port exists before any of the
            // sandbox's code does.
            let egress = match spec.network.rules() {
                Some(_) => Some(
                    egress::listen_in(init.pid(), warden_spec::EGRESS_PROXY_PORT).map_err(
                        |source| SpawnError::Sys {
                            what: "open the egress proxy's port in the sandbox",
                            source,
                        },
                    )?,
                ),
                None => None,
            };
            Ok::<_, SpawnError>((init.go(&message, &paths)?, egress))
        })();
        let (started, egress) = match started {
            Ok(s) => s,
            Err(e) => {
                // The init is gone with `init` (killed and reaped).
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        let id = format!("{:016x}", rand::random::<u64>());
        Ok(Box::new(NativeSandbox {
            id,
            _image_etc: image_etc,
            control: Some(started.control),
            egress,
            init: Some(started.init),
            cgroup: Some(cgroup),
            slot: Some(slot),
        }))
    }
}

pub struct NativeSandbox {
    id: String,
    /// The directory image's /etc template, held (so never collected)
    /// while the sandbox has it bound.
    _image_etc: Option<crate::cache::Entry>,
    control: Option<UnixStream>,
    egress: Option<std::net::TcpListener>,
    init: Option<InitProcess>,
    cgroup: Option<Cgroup>,
    slot: Option<Slot>,
}

impl NativeSandbox {
    fn teardown(&mut self) -> Result<SandboxStats, RuntimeError> {
        self.control.take();
        self.egress.take();
        if let Some(init) = self.init.take() {
            init.kill_and_reap();
        }
        let mut stats = SandboxStats::default();
        if let Some(cg) = self.cgroup.take() {
            if let Ok(s) = cg.lifetime_stats() {
                stats = s.into();
            }
            // The init's exit means its PID namespace is empty (and should
            // anything remain, this falls back to killing it).
            cg.remove_emptied()?;
        }
        self.slot.take();
        Ok(stats)
    }
}

impl Sandbox for NativeSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn take_control(&mut self) -> Option<UnixStream> {
        self.control.take()
    }

    fn take_egress_listener(&mut self) -> Option<std::net::TcpListener> {
        self.egress.take()
    }

    fn stats(&self) -> Result<SandboxStats, RuntimeError> {
        match &self.cgroup {
            Some(cg) => Ok(cg.stats()?.into()),
            None => Ok(SandboxStats::default()),
        }
    }

    fn kill(&self) {
        if let Some(init) = &self.init {
            init.kill();
        }
    }

    fn destroy(mut self: Box<Self>) -> Result<SandboxStats, RuntimeError> {
        self.teardown()
    }
}

impl Drop for NativeSandbox {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

impl From<warden_cgroups::Stats> for SandboxStats {
    fn from(s: warden_cgroups::Stats) -> Self {
        SandboxStats {
            memory_peak_bytes: s.memory_peak.unwrap_or(0),
            memory_current_bytes: s.memory_current.unwrap_or(0),
            memory_cache_bytes: s.memory_file.unwrap_or(0),
            shmem_bytes: s.memory_shmem.unwrap_or(0),
            cpu_usage_ns: s.cpu_usage_ns.unwrap_or(0),
            pids: s.pids_current.unwrap_or(0),
            oom_kills: s.oom_kills.unwrap_or(0),
        }
    }
}

//! The native backend: Linux namespaces, cgroups, Landlock and seccomp on the
//! host kernel. The host side lives here (`spawn`, `slots`); the sandbox side
//! (`inside`, `rootfs`) runs in the init before it serves the protocol.

pub mod cgroup_pool;
pub mod egress;
mod filler;
pub mod inside;
pub mod netns;
pub mod rootfs;
pub mod setup;
pub mod slots;
pub mod spawn;
pub mod templates;
pub mod zygote;

use crate::{RuntimeError, Sandbox, SandboxStats};
use setup::NativeSetup;
use slots::{Slot, Slots};
use spawn::{InitProcess, Prepare, SpawnError};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use warden_cgroups::{Cgroup, Manager};
use warden_spec::{Isolation, SandboxSpec};

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
    /// Cgroups kept ready for the next sandboxes (see `cgroup_pool.rs`);
    /// 0 for a one-shot runtime, which would only make groups to remove.
    pub cgroup_pool: usize,
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            init_path: PathBuf::from("warden-init"),
            state_dir: PathBuf::from("/run/warden"),
            cgroup_parent: "warden".into(),
            favor_dynmods: true,
            cgroup_pool: cgroup_pool::POOL_SIZE,
        }
    }
}

pub struct NativeRuntime {
    zygote: zygote::Zygote,
    /// Fresh network namespaces made ahead of time, one per sandbox.
    netns: netns::NetnsPool,
    staging: String,
    templates: templates::Templates,
    /// The part of the seccomp policy each init attaches itself (the rest
    /// it inherits from the zygote), compiled once here.
    seccomp: Vec<u8>,
    slots: Arc<Slots>,
    cgroups: Manager,
    cgroup_pool: cgroup_pool::CgroupPool,
}

impl NativeRuntime {
    /// Checks privileges, prepares the state directory, and reaps whatever a
    /// crashed earlier process left behind.
    pub fn new(cfg: NativeConfig) -> Result<NativeRuntime, RuntimeError> {
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
        if cfg.favor_dynmods {
            if let Err(e) = warden_cgroups::favor_dynamic_mods() {
                tracing::warn!(
                    "cannot enable cgroup favordynmods (sandbox starts may be slower): {e}"
                );
            }
        }
        let templates =
            templates::prepare(&cfg.state_dir, templates::PerSandbox::Links).map_err(|e| {
                RuntimeError::State {
                    path: cfg.state_dir.join("templates"),
                    source: e,
                }
            })?;
        let seccomp = warden_confine::load_seccomp_split()?;
        let slots = Arc::new(Slots::open(&cfg.state_dir)?);
        // Killing a sandbox's init ends its whole PID namespace, so the v1
        // freezer would add nothing but a directory per sandbox.
        let cgroups = Manager::detect(&cfg.cgroup_parent)?.without_freezer();
        let mut rt = NativeRuntime {
            zygote: zygote::Zygote::start(&init_path, &seccomp.inherited)?,
            netns: netns::NetnsPool::start(netns::POOL_SIZE),
            staging: staging.to_string_lossy().into_owned(),
            templates,
            seccomp: seccomp.own.to_bytes(),
            slots: slots.clone(),
            cgroups: cgroups.clone(),
            // Not filling yet: leftovers are reaped first, below.
            cgroup_pool: cgroup_pool::CgroupPool::start(
                0,
                slots.clone(),
                cgroups.clone(),
                Default::default(),
            ),
        };
        rt.reap_leftovers()?;
        let defaults = cgroup_limits(&SandboxSpec::default());
        rt.cgroup_pool = cgroup_pool::CgroupPool::start(cfg.cgroup_pool, slots, cgroups, defaults);
        Ok(rt)
    }

    /// Names of the cgroups made ahead of time and not yet used.
    pub fn pooled_cgroups(&self) -> Vec<String> {
        self.cgroup_pool.ready()
    }

    pub fn cgroup_mode(&self) -> warden_cgroups::Mode {
        self.cgroups.mode()
    }

    /// Destroys the cgroup (and so every process) of each slot whose owner
    /// is gone. Returns how many were reaped.
    pub fn reap_leftovers(&self) -> Result<usize, RuntimeError> {
        let mut reaped = 0;
        for name in self.cgroups.list()? {
            let Some(index) = slots::parse_cgroup_name(&name) else {
                continue;
            };
            // Holding the slot proves no live process owns the cgroup.
            if let Some(_slot) = self.slots.try_acquire(index)? {
                if let Some(cg) = self.cgroups.open(&name)? {
                    cg.destroy()?;
                    reaped += 1;
                }
            }
        }
        Ok(reaped)
    }
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

impl Drop for NativeRuntime {
    fn drop(&mut self) {
        templates::remove(&self.templates);
    }
}

struct Prep<'a> {
    host_base: u32,
    cgroup: &'a Cgroup,
    /// Open the egress proxy's listener in the sandbox (before "go", so it
    /// exists before any of the sandbox's code does).
    egress: bool,
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
}

impl Prepare for Prep<'_> {
    fn prepare(&self, pid: i32) -> Result<(), SpawnError> {
        spawn::write_id_maps(pid, self.host_base, slots::IDS_PER_SLOT)?;
        self.cgroup.add_pid(pid).map_err(|e| SpawnError::Sys {
            what: "join cgroup",
            source: std::io::Error::other(e.to_string()),
        })?;
        if self.egress {
            let l = egress::listen_in(pid, warden_spec::EGRESS_PROXY_PORT).map_err(|source| {
                SpawnError::Sys {
                    what: "open the egress proxy's port in the sandbox",
                    source,
                }
            })?;
            *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(l);
        }
        Ok(())
    }
}

impl crate::Runtime for NativeRuntime {
    fn start(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, RuntimeError> {
        spec.validate()?;
        if spec.isolation != Isolation::Native {
            return Err(RuntimeError::Unsupported(format!(
                "the native runtime cannot run isolation {:?}",
                spec.isolation
            )));
        }
        let limits = cgroup_limits(spec);
        let (slot, cgroup) = match self.cgroup_pool.take(&limits) {
            Some(ready) => ready,
            None => cgroup_pool::make(&self.slots, &self.cgroups, &limits)?,
        };
        let setup = NativeSetup::from_spec(spec, &self.staging, &self.templates);
        let json = serde_json::to_vec(&setup).map_err(|e| RuntimeError::Init(e.to_string()))?;
        let message = setup::encode_message(&json, &self.seccomp);
        let prep = Prep {
            host_base: slot.host_base(),
            cgroup: &cgroup,
            egress: spec.network.rules().is_some(),
            listener: std::sync::Mutex::new(None),
        };
        let started = match spawn::spawn(&self.zygote, &message, self.netns.take(), &prep) {
            Ok(s) => s,
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        let id = format!("{:016x}", rand::random::<u64>());
        let egress = prep
            .listener
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(NativeSandbox {
            id,
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
        let reaped = match self.init.take() {
            Some(init) => {
                init.kill_and_reap();
                true
            }
            None => false,
        };
        let mut stats = SandboxStats::default();
        if let Some(cg) = self.cgroup.take() {
            if let Ok(s) = cg.lifetime_stats() {
                stats = s.into();
            }
            if reaped {
                // The init's exit means its PID namespace is empty.
                cg.remove_emptied()?;
            } else {
                cg.destroy()?;
            }
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

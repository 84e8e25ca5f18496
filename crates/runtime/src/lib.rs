//! Warden's runtime: "start this sandbox spec and give me a control channel".
//!
//! This is the only layer that calls Linux isolation APIs (with its helper
//! crates `warden-cgroups` and `warden-confine`). Every backend starts the
//! same in-sandbox init and hands back a socket that speaks
//! `warden-protocol`, so everything above is written once for all tiers.

pub mod cache;
pub mod export;
pub mod gvisor;
pub mod image_tree;
pub mod native;
pub mod tiers;
pub mod volume;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use warden_spec::{SandboxSpec, SpecError};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid sandbox spec: {0}")]
    Spec(#[from] SpecError),
    #[error("{0}")]
    Unsupported(String),
    #[error("the native runtime must run as root (it maps uid ranges and manages cgroups)")]
    NotRoot,
    #[error("init binary: {0}")]
    Init(String),
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Slot(#[from] native::slots::SlotError),
    #[error("cgroup: {0}")]
    Cgroup(#[from] warden_cgroups::CgroupError),
    #[error("seccomp policy: {0}")]
    Confine(#[from] warden_confine::ConfineError),
    #[error("starting the sandbox: {0}")]
    Spawn(#[from] native::SpawnError),
    #[error("the {} isolation tier is unavailable: {reason}", tier.name())]
    TierUnavailable {
        tier: warden_spec::Isolation,
        reason: String,
    },
    #[error("gVisor: {0}")]
    Gvisor(#[from] gvisor::GvisorError),
}

/// Resource usage of a sandbox, from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SandboxStats {
    pub memory_peak_bytes: u64,
    /// Memory charged now (page cache included, as the limit counts it).
    #[serde(default)]
    pub memory_current_bytes: u64,
    /// Page cache, tmpfs contents included.
    #[serde(default)]
    pub memory_cache_bytes: u64,
    /// What the sandbox's tmpfs file systems (`/output`, `/scratch`,
    /// `/tmp`) and shared memory hold.
    #[serde(default)]
    pub shmem_bytes: u64,
    pub cpu_usage_ns: u64,
    pub pids: u64,
    pub oom_kills: u64,
}

/// A running sandbox. Dropping it destroys it.
pub trait Sandbox: Send {
    fn id(&self) -> &str;
    /// The host end of the control channel (once).
    fn take_control(&mut self) -> Option<UnixStream>;
    /// For a sandbox with an egress allowlist: the listener on the
    /// sandbox's `127.0.0.1:EGRESS_PROXY_PORT` (in the sandbox's network
    /// namespace) that the caller's egress proxy accepts on (once). The
    /// caller must drop it when the sandbox ends: it keeps the namespace alive.
    fn take_egress_listener(&mut self) -> Option<std::net::TcpListener>;
    fn stats(&self) -> Result<SandboxStats, RuntimeError>;
    /// Kills every process in the sandbox at once (idempotent); `destroy`
    /// still has to be called to release its resources.
    fn kill(&self);
    /// Saves the whole sandbox (its processes, their memory, the files in
    /// its memory-backed places) into the empty directory `image` and ends
    /// it; `destroy` still has to be called. Its init must have been asked
    /// to `Freeze` first, so that no frame is half-written. A backend that
    /// cannot says so (the sandbox goes on as it was).
    fn checkpoint(&mut self, _image: &std::path::Path) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported(
            "this isolation tier cannot keep a sandbox's processes and memory".into(),
        ))
    }
    /// Kills everything, waits, removes the cgroup and releases the slot;
    /// returns the figures of the sandbox's whole life (peak memory, CPU
    /// time, OOM kills; a backend may leave the current-usage fields 0).
    fn destroy(self: Box<Self>) -> Result<SandboxStats, RuntimeError>;
}

/// An isolation backend.
pub trait Runtime: Send + Sync {
    fn start(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, RuntimeError>;

    /// Starts a sandbox for `spec` from what [`Sandbox::checkpoint`] saved
    /// in `image` (from a sandbox of the same spec): its processes go on
    /// where they were; its init, still frozen, answers on the new
    /// control channel once thawed. `image` is only read.
    fn restore(
        &self,
        _spec: &SandboxSpec,
        _image: &std::path::Path,
    ) -> Result<Box<dyn Sandbox>, RuntimeError> {
        Err(RuntimeError::Unsupported(
            "this isolation tier cannot restore a sandbox's processes and memory".into(),
        ))
    }

    /// Refuses an isolation tier this runtime cannot start (opening it
    /// first if it has not been checked yet). A single backend starts what
    /// it is asked to and says otherwise at `start`.
    fn check(&self, _isolation: warden_spec::Isolation) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// How each tier this runtime serves stands (for listings and logs).
    fn probe(&self) -> Vec<tiers::TierStatus> {
        Vec::new()
    }

    /// Says that no more sandboxes will be started (a one-shot `warden
    /// run`): the runtime lets go of what only starts need while its
    /// sandbox runs, instead of on the way out. A later start fails.
    fn seal(&self) {}
}

//! The sandbox specification: a plain, serialisable description of one sandbox.
//!
//! Every layer above the runtime (CLI, server, review jobs) builds a [`SandboxSpec`]
//! and hands it to a runtime backend; nothing here touches the kernel, so it is
//! shared freely and unit-tested without privileges.

mod network;
mod size;

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use network::{
    is_host_name, normalise_host, validate_rules, EgressEvent, EgressRule, NetworkMode, Outcome,
    RuleError, DEFAULT_PORTS, EGRESS_PROXY_PORT, MAX_RULES,
};
pub use size::{parse_duration, parse_size, SizeError};

/// Where the sandbox's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum Image {
    /// The host's `/usr` (read-only) with a synthesised `/etc`.
    Host,
    /// A root-filesystem directory (e.g. built by mmdebstrap), bound read-only.
    Dir(String),
}

/// Which isolation tier runs the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Namespaces, cgroups, Landlock and seccomp on the host kernel.
    #[default]
    Native,
    /// gVisor (runsc): a user-space kernel between the sandbox and the host.
    Gvisor,
}

impl Isolation {
    pub const ALL: [Isolation; 2] = [Isolation::Native, Isolation::Gvisor];

    /// The name the API, specs and the CLI use.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Native => "native",
            Isolation::Gvisor => "gvisor",
        }
    }

    /// The tier called `name`, if any.
    pub fn from_name(name: &str) -> Option<Isolation> {
        Isolation::ALL.into_iter().find(|i| i.name() == name)
    }
}

/// The identity the sandbox's processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SandboxUser {
    /// The unprivileged `sandbox` user (uid/gid 1000 inside the sandbox).
    #[default]
    Sandbox,
    /// uid 0 inside the sandbox: still no capabilities, still mapped to an
    /// unprivileged host uid. For images whose tools expect to be root.
    Root,
    /// The unprivileged `user` account (uid/gid 1001) with its own writable
    /// home, `/home/user`: the layout E2B's code expects.
    User,
}

impl SandboxUser {
    pub const ALL: [SandboxUser; 3] = [SandboxUser::Sandbox, SandboxUser::Root, SandboxUser::User];

    pub fn uid(self) -> u32 {
        match self {
            SandboxUser::Sandbox => SANDBOX_UID,
            SandboxUser::Root => 0,
            SandboxUser::User => USER_UID,
        }
    }

    /// The account's name in the sandbox's `/etc/passwd`.
    pub fn name(self) -> &'static str {
        match self {
            SandboxUser::Sandbox => "sandbox",
            SandboxUser::Root => "root",
            SandboxUser::User => "user",
        }
    }

    /// The user named `name`, if any.
    pub fn from_name(name: &str) -> Option<SandboxUser> {
        SandboxUser::ALL.into_iter().find(|u| u.name() == name)
    }

    /// `HOME`: `/scratch` for `sandbox` (its writable work directory),
    /// `/root` for root, `/home/user` (a writable tmpfs of its own) for
    /// `user`.
    pub fn home(self) -> &'static str {
        match self {
            SandboxUser::Sandbox => "/scratch",
            SandboxUser::Root => "/root",
            SandboxUser::User => USER_HOME,
        }
    }
}

/// The uid/gid of the `sandbox` user inside every sandbox.
pub const SANDBOX_UID: u32 = 1000;

/// The uid/gid of the `user` account (see [`SandboxUser::User`]).
pub const USER_UID: u32 = 1001;

/// The `user` account's home: a writable tmpfs the size of the disk limit,
/// made only in sandboxes that run as `user`.
pub const USER_HOME: &str = "/home/user";

/// A host directory bound into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute host path.
    pub source: String,
    /// Absolute path inside the sandbox.
    pub target: String,
    #[serde(default = "default_true")]
    pub read_only: bool,
    /// The source's files carry the sandbox's own ids (a volume: what one
    /// sandbox's uid 1000 wrote, the next sandbox's uid 1000 owns). The
    /// native tier mounts it idmapped through the sandbox's user namespace,
    /// so on-disk ids are the ids inside, whatever host range the sandbox
    /// was given; gVisor's gofer stores the Sentry's ids as they are.
    #[serde(default)]
    pub sandbox_ids: bool,
}

fn default_true() -> bool {
    true
}

/// Resource limits. `None` means "no limit beyond the host's".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// Swap allowed beyond `memory_bytes`; 0 disables swap for the sandbox.
    pub swap_bytes: Option<u64>,
    /// CPU share in thousandths of a CPU (500 = half a core).
    pub cpu_millicores: Option<u64>,
    pub pids: Option<u64>,
    /// Wall-clock lifetime of the whole sandbox.
    #[serde(with = "duration_ms")]
    pub timeout: Option<Duration>,
    /// Size of each writable tmpfs (`/output`, `/scratch`, `/tmp`) and the cap on
    /// any single file a process may write (RLIMIT_FSIZE).
    pub disk_bytes: u64,
    /// Open file descriptors per process.
    pub nofile: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: Some(512 << 20),
            swap_bytes: Some(0),
            cpu_millicores: Some(1000),
            pids: Some(256),
            timeout: Some(Duration::from_secs(300)),
            disk_bytes: 256 << 20,
            nofile: 1024,
        }
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Everything a runtime backend needs to start one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub image: Image,
    #[serde(default)]
    pub isolation: Isolation,
    /// Bound read-only at `/input` when present.
    pub input_dir: Option<String>,
    /// Extra binds (validated: absolute, no `..`, not over the standard layout).
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Environment every process starts with (before per-command overrides).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    pub workdir: String,
    #[serde(default)]
    pub user: SandboxUser,
    /// A writable root: what the sandbox writes outside its tmpfs mounts
    /// (`/usr/local`, `/etc`, `/opt`, a new `/workspace`...) goes to a layer
    /// of its own over the read-only image, counted in the disk limit and
    /// gone with the sandbox. `/input` stays read-only. Writing there still
    /// takes the permissions of the user (the image's directories belong to
    /// root).
    #[serde(default)]
    pub writable_root: bool,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub network: NetworkMode,
    pub hostname: String,
}

impl Default for SandboxSpec {
    fn default() -> Self {
        SandboxSpec {
            image: Image::Host,
            isolation: Isolation::Native,
            input_dir: None,
            mounts: Vec::new(),
            env: Vec::new(),
            workdir: "/scratch".into(),
            user: SandboxUser::Sandbox,
            writable_root: false,
            limits: Limits::default(),
            network: NetworkMode::None,
            hostname: "sandbox".into(),
        }
    }
}

/// Paths of the standard layout that a user mount may not replace.
pub const RESERVED_TARGETS: &[&str] = &[
    "/", "/proc", "/dev", "/etc", "/usr", "/input", "/output", "/scratch", "/tmp", "/.warden",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error(
        "{field}: path {path:?} must be absolute and free of '..', '.', empty components and NUL"
    )]
    BadPath { field: &'static str, path: String },
    #[error("mount target {0:?} would replace part of the standard sandbox layout")]
    ReservedTarget(String),
    #[error("environment variable name {0:?} is invalid (empty, or contains '=' or NUL)")]
    BadEnvName(String),
    #[error("environment value for {0:?} contains NUL")]
    BadEnvValue(String),
    #[error("hostname {0:?} is invalid (1-63 chars of [A-Za-z0-9-], not starting with '-')")]
    BadHostname(String),
    #[error("limit {name} is out of range: {why}")]
    BadLimit { name: &'static str, why: String },
    #[error("on the gvisor tier a writable root cannot be combined with a read-write mount ({0}): gVisor would keep the mount's writes in the root's layer, not on the mount (use the native tier, or no writable root)")]
    WritableRootMount(String),
    #[error("network mode is not supported by this backend")]
    UnsupportedNetwork,
    #[error(transparent)]
    Egress(#[from] RuleError),
}

/// Checks that `path` is absolute and normalised (no `.`/`..`/empty components).
pub fn check_abs_path(field: &'static str, path: &str) -> Result<(), SpecError> {
    let bad = || SpecError::BadPath {
        field,
        path: path.to_string(),
    };
    if !path.starts_with('/') || path.contains('\0') {
        return Err(bad());
    }
    if path == "/" {
        return Ok(());
    }
    for comp in path[1..].split('/') {
        if comp.is_empty() || comp == "." || comp == ".." {
            return Err(bad());
        }
    }
    Ok(())
}

/// Checks an environment variable name.
pub fn check_env_name(name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(SpecError::BadEnvName(name.to_string()));
    }
    Ok(())
}

impl SandboxSpec {
    /// Rejects anything a backend could misinterpret. Backends call this first.
    pub fn validate(&self) -> Result<(), SpecError> {
        if let Image::Dir(dir) = &self.image {
            check_abs_path("image", dir)?;
        }
        if let Some(input) = &self.input_dir {
            check_abs_path("input_dir", input)?;
        }
        check_abs_path("workdir", &self.workdir)?;
        for m in &self.mounts {
            check_abs_path("mount source", &m.source)?;
            check_abs_path("mount target", &m.target)?;
            // Exact standard paths cannot be replaced; the kernel-facing trees
            // cannot be mounted into at all.
            let reserved = RESERVED_TARGETS.contains(&m.target.as_str())
                || ["/proc/", "/dev/", "/etc/", "/.warden/"]
                    .iter()
                    .any(|p| m.target.starts_with(p));
            if reserved || (self.user == SandboxUser::User && m.target == USER_HOME) {
                return Err(SpecError::ReservedTarget(m.target.clone()));
            }
            // gVisor's overlay covers every read-write mount (see the
            // runtime's `gvisor/bundle.rs`); the native tier's layers
            // cover only the image and /etc.
            if self.writable_root && !m.read_only && self.isolation == Isolation::Gvisor {
                return Err(SpecError::WritableRootMount(m.target.clone()));
            }
        }
        for (k, v) in &self.env {
            check_env_name(k)?;
            if v.contains('\0') {
                return Err(SpecError::BadEnvValue(k.clone()));
            }
        }
        if let Some(rules) = self.network.rules() {
            validate_rules(rules)?;
        }
        let h = &self.hostname;
        if h.is_empty()
            || h.len() > 63
            || h.starts_with('-')
            || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(SpecError::BadHostname(h.clone()));
        }
        let l = &self.limits;
        if l.disk_bytes < (1 << 20) {
            return Err(SpecError::BadLimit {
                name: "disk",
                why: "must be at least 1 MiB".into(),
            });
        }
        if let Some(m) = l.memory_bytes {
            if m < (8 << 20) {
                return Err(SpecError::BadLimit {
                    name: "memory",
                    why: "must be at least 8 MiB".into(),
                });
            }
        }
        if let Some(c) = l.cpu_millicores {
            if c == 0 || c > 1024 * 1000 {
                return Err(SpecError::BadLimit {
                    name: "cpus",
                    why: "must be more than 0 and at most 1024".into(),
                });
            }
        }
        if let Some(p) = l.pids {
            if p < 2 {
                return Err(SpecError::BadLimit {
                    name: "pids",
                    why: "must be at least 2 (the init and one command)".into(),
                });
            }
        }
        if l.nofile < 16 || l.nofile > 1 << 20 {
            return Err(SpecError::BadLimit {
                name: "nofile",
                why: "must be between 16 and 1048576".into(),
            });
        }
        if l.timeout == Some(Duration::ZERO) {
            return Err(SpecError::BadLimit {
                name: "timeout",
                why: "must be more than zero".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_round_trips() {
        let spec = SandboxSpec::default();
        spec.validate().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        let back: SandboxSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(spec, back);
    }

    #[test]
    fn isolation_names_match_serde() {
        for i in Isolation::ALL {
            let json = serde_json::to_string(&i).unwrap();
            assert_eq!(json, format!("\"{}\"", i.name()));
            assert_eq!(Isolation::from_name(i.name()), Some(i));
        }
        assert_eq!(Isolation::from_name("Gvisor"), None);
        assert_eq!(Isolation::from_name(""), None);
    }

    #[test]
    fn paths_must_be_absolute_and_normal() {
        for bad in ["", "rel", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\0b"] {
            assert!(check_abs_path("x", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["/", "/a", "/a/b.c", "/..a/b"] {
            check_abs_path("x", good).unwrap();
        }
    }

    #[test]
    fn reserved_mount_targets_are_refused() {
        for target in [
            "/proc",
            "/proc/sys",
            "/etc/x",
            "/input",
            "/.warden/init",
            "/",
        ] {
            let mut spec = SandboxSpec::default();
            spec.mounts.push(Mount {
                source: "/srv".into(),
                target: target.into(),
                read_only: true,
                sandbox_ids: false,
            });
            assert!(spec.validate().is_err(), "{target} accepted");
        }
        let mut spec = SandboxSpec::default();
        spec.mounts.push(Mount {
            source: "/srv".into(),
            target: "/data".into(),
            read_only: true,
            sandbox_ids: false,
        });
        spec.validate().unwrap();
    }

    #[test]
    fn env_and_hostname_are_checked() {
        let mut spec = SandboxSpec::default();
        spec.env.push(("A=B".into(), "x".into()));
        assert_eq!(spec.validate(), Err(SpecError::BadEnvName("A=B".into())));
        let spec = SandboxSpec {
            hostname: "bad host".into(),
            ..Default::default()
        };
        assert!(matches!(spec.validate(), Err(SpecError::BadHostname(_))));
    }

    #[test]
    fn limits_are_range_checked() {
        let mut spec = SandboxSpec::default();
        spec.limits.pids = Some(1);
        assert!(matches!(
            spec.validate(),
            Err(SpecError::BadLimit { name: "pids", .. })
        ));
        let mut spec = SandboxSpec::default();
        spec.limits.cpu_millicores = Some(0);
        assert!(spec.validate().is_err());
        let mut spec = SandboxSpec::default();
        spec.limits.disk_bytes = 10;
        assert!(spec.validate().is_err());
    }
}

//! Cgroup management for Warden sandboxes: one interface over cgroup v1
//! (legacy), v2 (unified) and hybrid hosts (hybrid uses the v1 controllers,
//! because the hybrid unified mount normally has no controllers attached).
//!
//! Layout: `<hierarchy root>/<parent>/<sandbox name>` in every hierarchy.
//! There is no `Drop` impl on [`Cgroup`]: teardown policy (kill, keep for
//! post-mortem, reap later via [`Manager::open`]) belongs to the runtime.

mod error;
mod fsutil;
mod tuning;
mod v1;
mod v2;

use std::path::{Path, PathBuf};

pub use error::{CgroupError, Op};
pub use tuning::favor_dynamic_mods;

/// Resource limits applied at creation. `None` leaves the kernel default
/// (unlimited) and does not require the controller to exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// Swap allowed beyond `memory_bytes`; `Some(0)` = no swap. Requires
    /// `memory_bytes` (v1 can only express memory+swap as one limit).
    pub memory_swap_bytes: Option<u64>,
    /// 1000 = one CPU; enforced as a CFS quota over a 100ms period. Minimum 10
    /// (the kernel's 1ms quota floor).
    pub cpu_millicores: Option<u64>,
    pub pids_max: Option<u64>,
}

/// CFS period used for `cpu_millicores` (microseconds).
pub const CPU_PERIOD_US: u64 = 100_000;

impl Limits {
    /// Rejects combinations that cannot be expressed identically on v1 and v2,
    /// so a sandbox behaves the same whatever the host.
    fn validate(&self) -> Result<(), CgroupError> {
        if self.memory_swap_bytes.is_some() && self.memory_bytes.is_none() {
            return Err(CgroupError::InvalidLimits(
                "memory_swap_bytes requires memory_bytes",
            ));
        }
        if let (Some(m), Some(s)) = (self.memory_bytes, self.memory_swap_bytes) {
            if m.checked_add(s).is_none() {
                return Err(CgroupError::InvalidLimits(
                    "memory_bytes + memory_swap_bytes overflows",
                ));
            }
        }
        if let Some(mc) = self.cpu_millicores {
            if mc < 10 {
                return Err(CgroupError::InvalidLimits(
                    "cpu_millicores must be >= 10 (1ms quota per 100ms)",
                ));
            }
            if mc.checked_mul(CPU_PERIOD_US / 1000).is_none() {
                return Err(CgroupError::InvalidLimits("cpu_millicores too large"));
            }
        }
        Ok(())
    }

    /// CFS quota in microseconds per [`CPU_PERIOD_US`].
    fn cpu_quota_us(&self) -> Option<u64> {
        self.cpu_millicores.map(|mc| mc * (CPU_PERIOD_US / 1000))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    V2,
}

/// Point-in-time usage. `None` means the host does not expose that figure
/// (controller not mounted/enabled, or kernel too old, e.g. v2 `memory.peak`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory_current: Option<u64>,
    pub memory_peak: Option<u64>,
    /// Page cache charged to the group (`file` in v2's `memory.stat`,
    /// `total_cache` in v1's), tmpfs contents included.
    pub memory_file: Option<u64>,
    /// tmpfs and shared memory charged to the group (`shmem`,
    /// `total_shmem`): what the sandbox's tmpfs file systems hold.
    pub memory_shmem: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    pub pids_current: Option<u64>,
    pub oom_kills: Option<u64>,
}

/// Validates a group name: `[A-Za-z0-9_-]{1,255}`. This keeps names from
/// escaping the parent (`..`, `/`) or colliding with cgroupfs control files
/// (which all contain a dot).
pub fn validate_name(name: &str) -> Result<(), CgroupError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > 255 {
        "longer than 255 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        "only [A-Za-z0-9_-] allowed"
    } else {
        return Ok(());
    };
    Err(CgroupError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

#[derive(Debug, Clone)]
enum Backend {
    V1(v1::Hierarchies),
    V2(v2::Hierarchy),
}

/// Entry point: knows the host's cgroup mode and the parent group.
#[derive(Debug, Clone)]
pub struct Manager {
    parent: String,
    backend: Backend,
}

impl Manager {
    /// Detects the host's cgroup mode and creates `parent` under each
    /// hierarchy root if missing.
    ///
    /// Detection: cgroups-rs' `is_cgroup2_unified_mode` (statfs of
    /// /sys/fs/cgroup == CGROUP2_SUPER_MAGIC) => v2. Otherwise v1 controllers
    /// are located from /proc/self/mountinfo via cgroups-rs' `V1` hierarchy;
    /// this covers hybrid hosts, whose cgroup2 mount at
    /// /sys/fs/cgroup/unified is ignored.
    pub fn detect(parent: &str) -> Result<Manager, CgroupError> {
        validate_name(parent)?;
        if cgroups_rs::fs::hierarchies::is_cgroup2_unified_mode() {
            let root = Path::new(cgroups_rs::fs::hierarchies::UNIFIED_MOUNTPOINT);
            return Self::v2_at(root, parent);
        }
        let backend = Backend::V1(v1::Hierarchies::discover(parent)?);
        Ok(Manager {
            parent: parent.to_string(),
            backend,
        })
    }

    /// Uses the cgroup2 hierarchy mounted at `root` regardless of host mode
    /// (for tests on hybrid hosts, or a delegated v2 subtree).
    pub fn v2_at(root: &Path, parent: &str) -> Result<Manager, CgroupError> {
        validate_name(parent)?;
        let backend = Backend::V2(v2::Hierarchy::init(root, parent)?);
        Ok(Manager {
            parent: parent.to_string(),
            backend,
        })
    }

    /// New groups leave out the v1 freezer hierarchy (no effect on v2,
    /// whose freezer is built in). For groups whose processes all die with
    /// one of them, such as a PID namespace's init, the freezer's race-free
    /// kill adds nothing, and each group saves a directory to make, join and
    /// remove. `kill_all` still converges without it unless the workload
    /// forks faster than it is killed. Leftover groups are still looked for
    /// (and removed) in the freezer hierarchy.
    pub fn without_freezer(mut self) -> Manager {
        if let Backend::V1(h) = self.backend {
            self.backend = Backend::V1(h.without_freezer());
        }
        self
    }

    pub fn mode(&self) -> Mode {
        match self.backend {
            Backend::V1(_) => Mode::V1,
            Backend::V2(_) => Mode::V2,
        }
    }

    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// Creates a new group with `limits`. Fails with `AlreadyExists` if any
    /// part of it exists (a leftover must be reaped via `open` + `destroy`).
    /// On failure nothing created by this call is left behind.
    pub fn create(&self, name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        validate_name(name)?;
        limits.validate()?;
        let inner = match &self.backend {
            Backend::V1(h) => Inner::V1(h.create(name, limits)?),
            Backend::V2(h) => Inner::V2(h.create(name, limits)?),
        };
        tracing::debug!(name, ?limits, "cgroup created");
        Ok(Cgroup {
            name: name.to_string(),
            inner,
        })
    }

    /// Opens an existing group (e.g. to reap leftovers after a crash).
    /// `Ok(None)` if it exists in no hierarchy.
    pub fn open(&self, name: &str) -> Result<Option<Cgroup>, CgroupError> {
        validate_name(name)?;
        let inner = match &self.backend {
            Backend::V1(h) => h.open(name)?.map(Inner::V1),
            Backend::V2(h) => h.open(name)?.map(Inner::V2),
        };
        Ok(inner.map(|inner| Cgroup {
            name: name.to_string(),
            inner,
        }))
    }

    /// Names of the existing child groups under the parent (union over
    /// hierarchies on v1), sorted.
    pub fn list(&self) -> Result<Vec<String>, CgroupError> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::V1(h) => h.list(&mut out)?,
            Backend::V2(h) => h.list(&mut out)?,
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Removes the (empty) parent group in every hierarchy. Idempotent; fails
    /// with EBUSY if child groups remain. Mostly for tests and uninstall.
    pub fn remove_parent(self) -> Result<(), CgroupError> {
        match &self.backend {
            Backend::V1(h) => h.remove_parent(),
            Backend::V2(h) => h.remove_parent(),
        }
    }
}

#[derive(Debug)]
enum Inner {
    V1(v1::Group),
    V2(v2::Group),
}

/// One sandbox's cgroup (a directory per v1 hierarchy, or one v2 directory).
#[derive(Debug)]
pub struct Cgroup {
    name: String,
    inner: Inner,
}

impl Cgroup {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's directories, one per hierarchy. On v2 there is exactly
    /// one, usable with clone3(CLONE_INTO_CGROUP) to skip `add_pid`.
    pub fn paths(&self) -> Vec<&Path> {
        match &self.inner {
            Inner::V1(g) => g.dirs(),
            Inner::V2(g) => vec![g.path()],
        }
    }

    /// Moves process `pid` (all its threads) into the group, in every v1
    /// hierarchy or the one v2 group.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        if pid <= 0 {
            // Writing 0 to cgroup.procs would move *us* into the sandbox.
            return Err(CgroupError::InvalidPid(pid));
        }
        match &self.inner {
            Inner::V1(g) => g.add_pid(pid),
            Inner::V2(g) => g.add_pid(pid),
        }
    }

    /// Pids (processes, not threads) in the group, sorted, deduplicated.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        match &self.inner {
            Inner::V1(g) => g.pids(&mut out)?,
            Inner::V2(g) => fsutil::read_procs(g.path(), &mut out)?,
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// SIGKILLs every process in the group, including reparented/setsid
    /// daemons (cgroup membership survives double-forks), and waits until the
    /// group is empty. Errors with `KillTimeout` after a few seconds.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        match &self.inner {
            Inner::V1(g) => g.kill_all(),
            Inner::V2(g) => g.kill_all(),
        }
    }

    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.inner {
            Inner::V1(g) => g.stats(),
            Inner::V2(g) => g.stats(),
        }
    }

    /// The figures that describe the group's whole life, for its last
    /// report: peak memory, CPU time and OOM kills (the other fields are
    /// `None`). Cheaper than [`Cgroup::stats`], which also reads the
    /// current usage.
    pub fn lifetime_stats(&self) -> Result<Stats, CgroupError> {
        match &self.inner {
            Inner::V1(g) => g.lifetime_stats(),
            Inner::V2(g) => g.lifetime_stats(),
        }
    }

    /// Removes a group that should be empty already, because every process
    /// in it has been reaped (e.g. its PID namespace's init has exited): one
    /// rmdir per hierarchy, without reading `cgroup.procs` first. Should a
    /// hierarchy still hold a process after all, falls back to
    /// [`Cgroup::destroy`].
    pub fn remove_emptied(self) -> Result<(), CgroupError> {
        let removed = match &self.inner {
            Inner::V1(g) => g.remove_dirs_once()?,
            Inner::V2(g) => fsutil::rmdir_unless_busy(g.path())?,
        };
        if removed {
            tracing::debug!(name = self.name, "cgroup removed");
            return Ok(());
        }
        self.destroy()
    }

    /// `kill_all`, then removes the group from every hierarchy, retrying
    /// EBUSY briefly. Idempotent: an already-removed group is success. On
    /// error the group may partly remain; `Manager::open` finds it again.
    pub fn destroy(self) -> Result<(), CgroupError> {
        self.kill_all()?;
        match &self.inner {
            Inner::V1(g) => g.remove_dirs(),
            Inner::V2(g) => fsutil::rmdir_retry(g.path()),
        }?;
        tracing::debug!(name = self.name, "cgroup destroyed");
        Ok(())
    }
}

/// Joins a validated name; kept in one place so paths never contain `/`.
fn child(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for n in ["a", "sbx-01", "A_b-C", "0", &"x".repeat(255)] {
            assert!(validate_name(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn invalid_names() {
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "/abs",
            "cgroup.procs",
            "a b",
            "é",
            "a\0",
            "a\n",
            &"x".repeat(256),
        ] {
            match validate_name(n) {
                Err(CgroupError::InvalidName { name, .. }) => assert_eq!(name, n),
                other => panic!("{n:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_validation() {
        assert!(Limits::default().validate().is_ok());
        let swap_only = Limits {
            memory_swap_bytes: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            swap_only.validate(),
            Err(CgroupError::InvalidLimits(_))
        ));
        let tiny_cpu = Limits {
            cpu_millicores: Some(5),
            ..Default::default()
        };
        assert!(tiny_cpu.validate().is_err());
        let half = Limits {
            cpu_millicores: Some(500),
            ..Default::default()
        };
        assert_eq!(half.cpu_quota_us(), Some(50_000));
        let overflow = Limits {
            memory_bytes: Some(u64::MAX),
            memory_swap_bytes: Some(1),
            ..Default::default()
        };
        assert!(overflow.validate().is_err());
    }
}

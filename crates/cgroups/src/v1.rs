//! cgroup v1 (legacy and hybrid hosts): one directory per controller
//! hierarchy. We use memory, pids, cpu, cpuacct (separate or co-mounted as
//! `cpu,cpuacct`) and freezer (for race-free kill); other controllers are
//! left alone so the sandbox stays in their root group.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cgroups_rs::fs::hierarchies::V1;
use cgroups_rs::fs::Controllers;

use crate::error::CgroupError;
use crate::fsutil::{self, Backoff, EXIT_WAIT, KILL_TIMEOUT, REKILL_AFTER};
use crate::{child, Limits, Stats};

/// Per-controller directories (parent group or sandbox group). Co-mounted
/// controllers share a directory; `unique()` yields each directory once.
#[derive(Debug, Clone)]
struct Dirs {
    freezer: Option<PathBuf>,
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
    cpuacct: Option<PathBuf>,
}

impl Dirs {
    fn join(&self, name: &str) -> Dirs {
        let j = |d: &Option<PathBuf>| d.as_deref().map(|d| child(d, name));
        Dirs {
            freezer: j(&self.freezer),
            memory: j(&self.memory),
            pids: j(&self.pids),
            cpu: j(&self.cpu),
            cpuacct: j(&self.cpuacct),
        }
    }

    fn unique(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::with_capacity(5);
        for d in [
            &self.freezer,
            &self.memory,
            &self.pids,
            &self.cpu,
            &self.cpuacct,
        ]
        .into_iter()
        .flatten()
        {
            if !out.contains(&d.as_path()) {
                out.push(d);
            }
        }
        out
    }
}

/// Where mountinfo told us the controllers are; used as the `path` of
/// `ControllerUnavailable` errors for unmounted v1 controllers.
const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Clone)]
pub(crate) struct Hierarchies {
    parent: Dirs,
    /// `memory.memsw.*` present (kernel built with swap accounting, enabled).
    memsw: bool,
    /// New groups join the freezer hierarchy (see `Manager::without_freezer`).
    /// Leftovers are still looked for and removed there either way.
    freezer: bool,
}

impl Hierarchies {
    pub(crate) fn discover(parent: &str) -> Result<Self, CgroupError> {
        let v1 = V1::new();
        let at = |c: Controllers| v1.get_mount_point(c).map(|(mnt, _)| child(&mnt, parent));
        let dirs = Dirs {
            freezer: at(Controllers::Freezer),
            memory: at(Controllers::Mem),
            pids: at(Controllers::Pids),
            cpu: at(Controllers::Cpu),
            cpuacct: at(Controllers::CpuAcct),
        };
        if dirs.unique().is_empty() {
            return Err(CgroupError::NoHierarchy(
                "/sys/fs/cgroup is not cgroup2 and no v1 memory/pids/cpu/cpuacct/freezer \
                 hierarchy is mounted"
                    .into(),
            ));
        }
        for d in dirs.unique() {
            fsutil::mkdir(d)?;
        }
        let mut memsw = false;
        if let Some(mem) = &dirs.memory {
            // Children inherit oom_kill_disable at mkdir, so making sure it is
            // off here keeps the OOM killer enabled for every sandbox without
            // a per-create write on the hot path.
            let oc = mem.join("memory.oom_control");
            let content = fsutil::read_opt(&oc)?.unwrap_or_default();
            if fsutil::keyed(&oc, &content, "oom_kill_disable")? == Some(1) {
                fsutil::write_file(&oc, b"0")?;
            }
            memsw = fsutil::exists(&mem.join("memory.memsw.limit_in_bytes"))?;
        }
        Ok(Hierarchies {
            parent: dirs,
            memsw,
            freezer: true,
        })
    }

    pub(crate) fn without_freezer(mut self) -> Self {
        self.freezer = false;
        self
    }

    pub(crate) fn create(&self, name: &str, limits: &Limits) -> Result<Group, CgroupError> {
        let unavailable = |controller| CgroupError::ControllerUnavailable {
            controller,
            path: PathBuf::from(MOUNTINFO),
        };
        if limits.memory_bytes.is_some() && self.parent.memory.is_none() {
            return Err(unavailable("memory"));
        }
        if limits.memory_swap_bytes.is_some() && !self.memsw {
            return Err(CgroupError::ControllerUnavailable {
                controller: "memory.memsw",
                path: self.parent.memory.clone().unwrap_or(MOUNTINFO.into()),
            });
        }
        if limits.pids_max.is_some() && self.parent.pids.is_none() {
            return Err(unavailable("pids"));
        }
        if limits.cpu_millicores.is_some() && self.parent.cpu.is_none() {
            return Err(unavailable("cpu"));
        }

        let mut dirs = self.parent.join(name);
        if !self.freezer {
            dirs.freezer = None;
        }
        let g = Group { dirs };
        let all = g.dirs.unique();
        for (i, d) in all.iter().enumerate() {
            match fsutil::mkdir(d) {
                Ok(true) => {}
                Ok(false) => {
                    fsutil::rollback(&all[..i]);
                    return Err(CgroupError::AlreadyExists { path: d.into() });
                }
                Err(e) => {
                    fsutil::rollback(&all[..i]);
                    return Err(e);
                }
            }
        }
        if let Err(e) = g.apply(limits) {
            fsutil::rollback(&all);
            return Err(e);
        }
        Ok(g)
    }

    pub(crate) fn open(&self, name: &str) -> Result<Option<Group>, CgroupError> {
        let g = Group {
            dirs: self.parent.join(name),
        };
        for d in g.dirs.unique() {
            if fsutil::exists(d)? {
                return Ok(Some(g));
            }
        }
        Ok(None)
    }

    pub(crate) fn list(&self, out: &mut Vec<String>) -> Result<(), CgroupError> {
        for d in self.parent.unique() {
            fsutil::child_groups(d, out)?;
        }
        Ok(())
    }

    pub(crate) fn remove_parent(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for d in self.parent.unique() {
            if let Err(e) = fsutil::rmdir_once(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[derive(Debug)]
pub(crate) struct Group {
    dirs: Dirs,
}

/// A single-number file of a controller's directory, if both exist.
fn file_u64(dir: &Option<PathBuf>, file: &str) -> Result<Option<u64>, CgroupError> {
    match dir {
        Some(dir) => fsutil::read_u64_opt(&dir.join(file)),
        None => Ok(None),
    }
}

impl Group {
    pub(crate) fn dirs(&self) -> Vec<&Path> {
        self.dirs.unique()
    }

    /// Order matters for memory: memsw (memory+swap) must stay >= the memory
    /// limit at every step, and both start unlimited, so memory goes first.
    fn apply(&self, l: &Limits) -> Result<(), CgroupError> {
        if let (Some(mem), Some(dir)) = (l.memory_bytes, &self.dirs.memory) {
            fsutil::write_u64(&dir.join("memory.limit_in_bytes"), mem)?;
            if let Some(swap) = l.memory_swap_bytes {
                // validate() guarantees no overflow.
                fsutil::write_u64(&dir.join("memory.memsw.limit_in_bytes"), mem + swap)?;
                if swap == 0 {
                    // memsw already forbids swap; swappiness 0 also stops
                    // reclaim from trying to swap anon pages out first.
                    fsutil::write_file(&dir.join("memory.swappiness"), b"0")?;
                }
            }
        }
        if let (Some(quota), Some(dir)) = (l.cpu_quota_us(), &self.dirs.cpu) {
            // A new group always starts with the kernel default 100ms period
            // (not inherited), which is CPU_PERIOD_US, so only quota is written.
            fsutil::write_u64(&dir.join("cpu.cfs_quota_us"), quota)?;
        }
        if let (Some(max), Some(dir)) = (l.pids_max, &self.dirs.pids) {
            fsutil::write_u64(&dir.join("pids.max"), max)?;
        }
        Ok(())
    }

    pub(crate) fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for d in self.dirs.unique() {
            fsutil::write_pid(d, pid)?;
        }
        Ok(())
    }

    /// Union over hierarchies: after a partial `add_pid` a process may sit in
    /// only some of them, and each one blocks that hierarchy's rmdir.
    pub(crate) fn pids(&self, out: &mut Vec<i32>) -> Result<(), CgroupError> {
        for d in self.dirs.unique() {
            fsutil::read_procs(d, out)?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }

    /// Writes freezer.state; `Ok(false)` if there is no freezer group.
    fn set_freezer(&self, state: &[u8]) -> Result<bool, CgroupError> {
        let Some(dir) = &self.dirs.freezer else {
            return Ok(false);
        };
        match fsutil::write_file(&dir.join("freezer.state"), state) {
            Ok(()) => Ok(true),
            Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Freeze so nothing can fork between reading cgroup.procs and the
    /// SIGKILLs (new children of a freezing group are frozen too), kill, thaw
    /// so the kills are delivered, wait for the exits, and repeat until the
    /// group is empty. Each freeze/thaw flips the kernel's `freezer_active`
    /// static key (~100us each here), so processes already killed and merely
    /// exiting are not re-killed. Without a freezer hierarchy the loop alone
    /// still converges unless the workload forks faster than we kill.
    pub(crate) fn kill_all(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut backoff = Backoff::new();
        let mut pids = Vec::new();
        let mut killed: Vec<i32> = Vec::new();
        let mut last_kill: Option<Instant> = None;
        let dirs = self.dirs.unique();
        let err_dir = dirs.first().copied().unwrap_or(Path::new(""));
        loop {
            pids.clear();
            self.pids(&mut pids)?;
            if pids.is_empty() {
                return Ok(());
            }
            if start.elapsed() > KILL_TIMEOUT {
                return Err(CgroupError::KillTimeout {
                    path: err_dir.into(),
                    remaining: pids.len(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            let dying = last_kill.is_some_and(|t| t.elapsed() < REKILL_AFTER)
                && pids.iter().all(|p| killed.binary_search(p).is_ok());
            if dying {
                fsutil::kill_pids(&pids, err_dir, false)?.wait(EXIT_WAIT, &mut backoff);
                continue;
            }
            let frozen = self.set_freezer(b"FROZEN")?;
            let res = (|| {
                if frozen {
                    pids.clear();
                    self.pids(&mut pids)?;
                }
                fsutil::kill_pids(&pids, err_dir, true)
            })();
            // Always thaw: a group left FROZEN would hang its processes forever.
            if frozen {
                self.set_freezer(b"THAWED")?;
            }
            res?.wait(EXIT_WAIT, &mut backoff);
            killed.clone_from(&pids);
            last_kill = Some(Instant::now());
        }
    }

    pub(crate) fn stats(&self) -> Result<Stats, CgroupError> {
        let d = &self.dirs;
        // The `total_` figures include descendants, like v2's.
        let (memory_file, memory_shmem) = match &d.memory {
            Some(dir) => {
                let p = dir.join("memory.stat");
                match fsutil::read_opt(&p)? {
                    Some(c) => (
                        fsutil::keyed(&p, &c, "total_cache")?,
                        fsutil::keyed(&p, &c, "total_shmem")?,
                    ),
                    None => (None, None),
                }
            }
            None => (None, None),
        };
        Ok(Stats {
            memory_current: file_u64(&d.memory, "memory.usage_in_bytes")?,
            memory_file,
            memory_shmem,
            pids_current: file_u64(&d.pids, "pids.current")?,
            ..self.lifetime_stats()?
        })
    }

    /// The figures that describe a whole life: peak memory, CPU time, OOM kills.
    pub(crate) fn lifetime_stats(&self) -> Result<Stats, CgroupError> {
        let d = &self.dirs;
        let oom_kills = match &d.memory {
            Some(dir) => {
                let p = dir.join("memory.oom_control");
                match fsutil::read_opt(&p)? {
                    Some(c) => fsutil::keyed(&p, &c, "oom_kill")?,
                    None => None,
                }
            }
            None => None,
        };
        Ok(Stats {
            memory_peak: file_u64(&d.memory, "memory.max_usage_in_bytes")?,
            cpu_usage_ns: file_u64(&d.cpuacct, "cpuacct.usage")?,
            oom_kills,
            ..Stats::default()
        })
    }

    /// One rmdir per hierarchy: `Ok(false)` if some hierarchy still holds a
    /// process (EBUSY), leaving the rest to `kill_all` + `remove_dirs`.
    pub(crate) fn remove_dirs_once(&self) -> Result<bool, CgroupError> {
        for d in self.dirs.unique() {
            if !fsutil::rmdir_unless_busy(d)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// rmdir in every hierarchy; tries all of them and reports the first error.
    pub(crate) fn remove_dirs(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for d in self.dirs.unique() {
            if let Err(e) = fsutil::rmdir_retry(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// kill_all must still converge on hosts without a freezer hierarchy.
    #[test]
    fn kill_without_freezer() {
        if cgroups_rs::fs::hierarchies::is_cgroup2_unified_mode() {
            return;
        }
        let h = Hierarchies::discover(&format!("warden-unit-{}", std::process::id())).unwrap();
        let mut nofreeze = h.clone();
        nofreeze.parent.freezer = None;
        let g = nofreeze.create("nf", &Limits::default()).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let res = g.add_pid(child.id() as i32).and_then(|()| g.kill_all());
        let _ = child.kill();
        let status = child.wait();
        let rm = g.remove_dirs();
        let rm_parent = h.remove_parent();
        res.unwrap();
        assert_eq!(status.unwrap().signal(), Some(libc::SIGKILL));
        rm.unwrap();
        rm_parent.unwrap();
    }
}

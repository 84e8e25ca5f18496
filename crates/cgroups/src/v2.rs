//! cgroup v2 (unified): one directory per sandbox under `<root>/<parent>`.
//!
//! Controllers are enabled once, at `Manager` construction, in the root's and
//! the parent's `cgroup.subtree_control`; which ones actually ended up enabled
//! is cached so `create` needs no extra reads on the hot path.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::CgroupError;
use crate::fsutil::{self, Backoff, Killed, EXIT_WAIT, KILL_TIMEOUT, REKILL_AFTER};
use crate::{child, Limits, Stats, CPU_PERIOD_US};

/// Controllers sandboxes may need limits from.
const WANTED: [&str; 3] = ["memory", "pids", "cpu"];

#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    parent: PathBuf,
    memory: bool,
    pids: bool,
    cpu: bool,
    /// `memory.swap.max` exists (swap accounting compiled in and enabled).
    swap: bool,
    /// `cgroup.kill` exists (Linux >= 5.14).
    kill: bool,
    /// `cgroup.freeze` exists (Linux >= 5.2); fallback kill path only.
    freeze: bool,
}

fn has_word(list: &str, word: &str) -> bool {
    list.split_ascii_whitespace().any(|w| w == word)
}

/// Best-effort `+controller` in `dir/cgroup.subtree_control` for each wanted
/// controller available in `dir`. Failure (e.g. EBUSY because `dir` has
/// processes of its own) only makes that controller unavailable, which
/// `create` reports if a limit actually needs it.
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let avail = fsutil::read_opt(&dir.join("cgroup.controllers"))?.unwrap_or_default();
    let st = dir.join("cgroup.subtree_control");
    let enabled = fsutil::read_opt(&st)?.unwrap_or_default();
    for c in WANTED {
        if has_word(&avail, c) && !has_word(&enabled, c) {
            if let Err(e) = fsutil::write_file(&st, format!("+{c}").as_bytes()) {
                tracing::warn!(path = %st.display(), controller = c, error = %e,
                    "cannot enable cgroup v2 controller");
            }
        }
    }
    Ok(())
}

impl Hierarchy {
    pub(crate) fn init(root: &Path, parent: &str) -> Result<Self, CgroupError> {
        if fsutil::read_opt(&root.join("cgroup.controllers"))?.is_none() {
            return Err(CgroupError::NoHierarchy(format!(
                "{} is not a cgroup2 mount (no cgroup.controllers)",
                root.display()
            )));
        }
        enable_controllers(root)?;
        let p = child(root, parent);
        fsutil::mkdir(&p)?;
        enable_controllers(&p)?;
        let enabled = fsutil::read_opt(&p.join("cgroup.subtree_control"))?.unwrap_or_default();
        let memory = has_word(&enabled, "memory");
        Ok(Hierarchy {
            memory,
            pids: has_word(&enabled, "pids"),
            cpu: has_word(&enabled, "cpu"),
            // The parent itself gets memory.* files iff memory is enabled for
            // it, which must be true if it can enable memory for its children.
            swap: memory && fsutil::exists(&p.join("memory.swap.max"))?,
            kill: fsutil::exists(&p.join("cgroup.kill"))?,
            freeze: fsutil::exists(&p.join("cgroup.freeze"))?,
            parent: p,
        })
    }

    pub(crate) fn create(&self, name: &str, l: &Limits) -> Result<Group, CgroupError> {
        let need = |ok: bool, wanted: bool, controller: &'static str| {
            if wanted && !ok {
                Err(CgroupError::ControllerUnavailable {
                    controller,
                    path: self.parent.join("cgroup.subtree_control"),
                })
            } else {
                Ok(())
            }
        };
        need(self.memory, l.memory_bytes.is_some(), "memory")?;
        need(self.swap, l.memory_swap_bytes.is_some(), "memory.swap")?;
        need(self.pids, l.pids_max.is_some(), "pids")?;
        need(self.cpu, l.cpu_millicores.is_some(), "cpu")?;

        let g = Group {
            path: child(&self.parent, name),
            kill: self.kill,
            freeze: self.freeze,
        };
        if !fsutil::mkdir(&g.path)? {
            return Err(CgroupError::AlreadyExists { path: g.path });
        }
        if let Err(e) = g.apply(l) {
            fsutil::rollback(&[&g.path]);
            return Err(e);
        }
        Ok(g)
    }

    pub(crate) fn open(&self, name: &str) -> Result<Option<Group>, CgroupError> {
        let path = child(&self.parent, name);
        if !fsutil::exists(&path)? {
            return Ok(None);
        }
        Ok(Some(Group {
            path,
            kill: self.kill,
            freeze: self.freeze,
        }))
    }

    pub(crate) fn list(&self, out: &mut Vec<String>) -> Result<(), CgroupError> {
        fsutil::child_groups(&self.parent, out)
    }

    pub(crate) fn remove_parent(&self) -> Result<(), CgroupError> {
        fsutil::rmdir_once(&self.parent)
    }
}

#[derive(Debug)]
pub(crate) struct Group {
    path: PathBuf,
    kill: bool,
    freeze: bool,
}

impl Group {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// v2 limits are independent files; `memory.swap.max` is already "swap
    /// beyond memory", matching `Limits::memory_swap_bytes` directly.
    fn apply(&self, l: &Limits) -> Result<(), CgroupError> {
        let p = &self.path;
        if let Some(m) = l.memory_bytes {
            fsutil::write_u64(&p.join("memory.max"), m)?;
        }
        if let Some(s) = l.memory_swap_bytes {
            fsutil::write_u64(&p.join("memory.swap.max"), s)?;
        }
        if let Some(n) = l.pids_max {
            fsutil::write_u64(&p.join("pids.max"), n)?;
        }
        if let Some(q) = l.cpu_quota_us() {
            fsutil::write_file(
                &p.join("cpu.max"),
                format!("{q} {CPU_PERIOD_US}").as_bytes(),
            )?;
        }
        Ok(())
    }

    pub(crate) fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        fsutil::write_pid(&self.path, pid)
    }

    /// Writes a control file; `Ok(false)` if the group is gone.
    fn write_ctl(&self, file: &str, data: &[u8]) -> Result<bool, CgroupError> {
        match fsutil::write_file(&self.path.join(file), data) {
            Ok(()) => Ok(true),
            Err(CgroupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// `cgroup.kill` SIGKILLs the whole subtree atomically in the kernel, forks
    /// in flight included. Older kernels: freeze (if possible), SIGKILL each
    /// pid, thaw. Exits are awaited on pidfds, not on `cgroup.events`: the
    /// kernel rate-limits cgroup file notifications to one per 10ms, so a
    /// freshly populated group would report `populated 0` up to 10ms late.
    pub(crate) fn kill_all(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut backoff = Backoff::new();
        let mut last_kill: Option<Instant> = None;
        let mut pids = Vec::new();
        loop {
            pids.clear();
            fsutil::read_procs(&self.path, &mut pids)?;
            if pids.is_empty() {
                return Ok(());
            }
            if start.elapsed() > KILL_TIMEOUT {
                return Err(CgroupError::KillTimeout {
                    path: self.path.clone(),
                    remaining: pids.len(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            let waiter = if last_kill.is_none_or(|t| t.elapsed() > REKILL_AFTER) {
                last_kill = Some(Instant::now());
                self.kill_round(&mut pids)?
            } else {
                fsutil::kill_pids(&pids, &self.path, false)?
            };
            waiter.wait(EXIT_WAIT, &mut backoff);
        }
    }

    fn kill_round(&self, pids: &mut Vec<i32>) -> Result<Killed, CgroupError> {
        if self.kill {
            // pidfds first, so the processes cannot be reaped and recycled
            // before we start waiting on them.
            let waiter = fsutil::kill_pids(pids, &self.path, false)?;
            self.write_ctl("cgroup.kill", b"1")?;
            return Ok(waiter);
        }
        let frozen = self.freeze && self.write_ctl("cgroup.freeze", b"1")?;
        pids.clear();
        let res = fsutil::read_procs(&self.path, pids)
            .and_then(|()| fsutil::kill_pids(pids, &self.path, true));
        if frozen {
            self.write_ctl("cgroup.freeze", b"0")?;
        }
        res
    }

    /// A number from a flat-keyed file of the group (`cpu.stat`, ...).
    fn keyed(&self, file: &str, key: &str) -> Result<Option<u64>, CgroupError> {
        let path = self.path.join(file);
        match fsutil::read_opt(&path)? {
            Some(c) => fsutil::keyed(&path, &c, key),
            None => Ok(None),
        }
    }

    /// The figures that describe a whole life: peak memory, CPU time, OOM kills.
    pub(crate) fn lifetime_stats(&self) -> Result<Stats, CgroupError> {
        Ok(Stats {
            memory_peak: fsutil::read_u64_opt(&self.path.join("memory.peak"))?,
            cpu_usage_ns: self
                .keyed("cpu.stat", "usage_usec")?
                .map(|us| us.saturating_mul(1000)),
            oom_kills: self.keyed("memory.events", "oom_kill")?,
            ..Stats::default()
        })
    }

    pub(crate) fn stats(&self) -> Result<Stats, CgroupError> {
        let p = &self.path;
        let mem_stat = p.join("memory.stat");
        let (memory_file, memory_shmem) = match fsutil::read_opt(&mem_stat)? {
            Some(c) => (
                fsutil::keyed(&mem_stat, &c, "file")?,
                fsutil::keyed(&mem_stat, &c, "shmem")?,
            ),
            None => (None, None),
        };
        Ok(Stats {
            memory_current: fsutil::read_u64_opt(&p.join("memory.current"))?,
            memory_file,
            memory_shmem,
            pids_current: fsutil::read_u64_opt(&p.join("pids.current"))?,
            ..self.lifetime_stats()?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// Exercises the pre-5.14 fallback (freeze + per-pid SIGKILL + thaw) on the
    /// real cgroup2 mount by pretending `cgroup.kill` is absent.
    #[test]
    fn fallback_kill_without_cgroup_kill() {
        let root = Path::new("/sys/fs/cgroup/unified");
        if !root.join("cgroup.procs").exists() {
            return;
        }
        let h = Hierarchy::init(root, &format!("warden-unit-{}", std::process::id())).unwrap();
        let fallback = Hierarchy {
            kill: false,
            ..h.clone()
        };
        assert!(fallback.freeze, "cgroup.freeze expected on this kernel");
        let g = fallback.create("fb", &Limits::default()).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let res = g.add_pid(child.id() as i32).and_then(|()| g.kill_all());
        let thawed = fsutil::read_opt(&g.path.join("cgroup.freeze"));
        let _ = child.kill();
        let status = child.wait();
        let rm = fsutil::rmdir_retry(&g.path);
        let rm_parent = h.remove_parent();
        res.unwrap();
        assert_eq!(thawed.unwrap().unwrap().trim(), "0");
        assert_eq!(status.unwrap().signal(), Some(libc::SIGKILL));
        rm.unwrap();
        rm_parent.unwrap();
    }
}

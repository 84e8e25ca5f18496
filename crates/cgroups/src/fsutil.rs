//! Direct cgroupfs file access shared by the v1 and v2 backends.
//!
//! Why not cgroups-rs for this (it is still used for mode detection and v1
//! mount discovery): its v1 `Cgroup` creates/deletes the group in *every*
//! mounted subsystem (blkio, devices, cpuset, ...), uses `create_dir_all` so
//! "already exists" is undetectable, and reads via `read_to_string`, which adds
//! statx+lseek per file for a size hint. On the sandbox-start path each cgroup
//! file here costs exactly open+write+close (reads: open+read+read+close).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{CgroupError, Op};

/// Writes `data` with a single write(2): cgroup files parse one write at a time.
pub(crate) fn write_file(path: &Path, data: &[u8]) -> Result<(), CgroupError> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| CgroupError::io(Op::Write, path, e))?;
    loop {
        match f.write(data) {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(_) => {
                return Err(CgroupError::io(
                    Op::Write,
                    path,
                    io::Error::new(io::ErrorKind::WriteZero, "short write to cgroup file"),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CgroupError::io(Op::Write, path, e)),
        }
    }
}

/// A first read shorter than this has read the whole file (see `read_opt`).
const SHORT_READ: usize = 2048;

/// Reads a whole (small) cgroup file; `Ok(None)` if it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CgroupError::io(Op::Read, path, e)),
    };
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            // cgroup files are seq_files: a first read returns everything
            // that fits one page, so a short one means the end (a longer
            // file's first read returns nearly a page). Saves a read each.
            Ok(n) if out.is_empty() && n < SHORT_READ => {
                out.extend_from_slice(&chunk[..n]);
                break;
            }
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A file in a group removed underneath us reads as ENODEV.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
            Err(e) => return Err(CgroupError::io(Op::Read, path, e)),
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Ok(Some(s)),
        Err(e) => Err(CgroupError::Parse {
            path: path.to_path_buf(),
            content: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
    }
}

/// Parses a single-value file such as `pids.current`; `max` maps to `u64::MAX`.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    match read_opt(path)? {
        None => Ok(None),
        Some(s) => parse_u64(path, s.trim()).map(Some),
    }
}

pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64, CgroupError> {
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: s.to_string(),
    })
}

/// Looks up `key` in a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`).
pub(crate) fn keyed(path: &Path, content: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in content.lines() {
        let mut it = line.split_ascii_whitespace();
        if it.next() == Some(key) {
            return match it.next() {
                Some(v) => parse_u64(path, v).map(Some),
                None => Err(CgroupError::Parse {
                    path: path.to_path_buf(),
                    content: line.to_string(),
                }),
            };
        }
    }
    Ok(None)
}

/// Reads `cgroup.procs` into `out`. A missing group holds no processes.
/// Pids of 0 (processes outside our pid namespace) are skipped: they cannot be
/// signalled by pid and `kill(0, ..)` would hit our own process group.
pub(crate) fn read_procs(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    let Some(content) = read_opt(&path)? else {
        return Ok(());
    };
    for line in content.lines() {
        let pid: i32 = line.trim().parse().map_err(|_| CgroupError::Parse {
            path: path.clone(),
            content: line.to_string(),
        })?;
        if pid > 0 {
            out.push(pid);
        }
    }
    Ok(())
}

/// Writes `pid` to `dir/cgroup.procs`, formatting without allocation.
pub(crate) fn write_pid(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    let mut buf = itoa_buf();
    let s = fmt_u64(&mut buf, pid as u64);
    write_file(&dir.join("cgroup.procs"), s)
}

pub(crate) fn write_u64(path: &Path, v: u64) -> Result<(), CgroupError> {
    let mut buf = itoa_buf();
    write_file(path, fmt_u64(&mut buf, v))
}

fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

fn fmt_u64(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// `mkdir`; `Ok(false)` if it already existed.
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgroupError::io(Op::Mkdir, path, e)),
    }
}

pub(crate) fn exists(path: &Path) -> Result<bool, CgroupError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CgroupError::io(Op::Stat, path, e)),
    }
}

/// Names of child directories of `dir` that are valid group names.
pub(crate) fn child_groups(dir: &Path, out: &mut Vec<String>) -> Result<(), CgroupError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io(Op::ReadDir, dir, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| CgroupError::io(Op::ReadDir, dir, e))?;
        let is_dir = ent
            .file_type()
            .map_err(|e| CgroupError::io(Op::ReadDir, ent.path(), e))?
            .is_dir();
        if let (true, Some(name)) = (is_dir, ent.file_name().to_str()) {
            if crate::validate_name(name).is_ok() {
                out.push(name.to_string());
            }
        }
    }
    Ok(())
}

/// How long `rmdir` keeps retrying EBUSY: exiting tasks can keep a group
/// populated for a moment after `cgroup.procs` reads empty.
const RMDIR_RETRY: Duration = Duration::from_secs(2);

/// `rmdir` that is idempotent (ENOENT is success) and retries EBUSY briefly.
pub(crate) fn rmdir_retry(path: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < RMDIR_RETRY => {
                backoff.sleep()
            }
            Err(e) => return Err(CgroupError::io(Op::Rmdir, path, e)),
        }
    }
}

/// Single idempotent `rmdir` (ENOENT is success), no retry.
pub(crate) fn rmdir_once(path: &Path) -> Result<(), CgroupError> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CgroupError::io(Op::Rmdir, path, e)),
    }
}

/// [`rmdir_once`], but `Ok(false)` when the group still holds a process
/// (EBUSY) instead of an error.
pub(crate) fn rmdir_unless_busy(path: &Path) -> Result<bool, CgroupError> {
    match fs::remove_dir(path) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CgroupError::io(Op::Rmdir, path, e)),
        _ => Ok(true),
    }
}

/// Best-effort removal used to roll back a half-created group.
pub(crate) fn rollback(dirs: &[&Path]) {
    for d in dirs.iter().rev() {
        if let Err(e) = fs::remove_dir(d) {
            tracing::warn!(path = %d.display(), error = %e, "cgroup rollback rmdir failed");
        }
    }
}

/// SIGKILL one pid by number; an already-gone process (ESRCH) is fine.
fn sigkill(pid: i32, dir: &Path) -> Result<(), CgroupError> {
    // SAFETY: kill(2) has no memory-safety preconditions; callers pass pid > 0
    // (read_procs filters) so this never targets a process group.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(CgroupError::io(Op::Kill, dir.join("cgroup.procs"), e))
}

/// Processes signalled (or watched) by [`kill_pids`]: their pidfds let us sleep exactly
/// until they exit instead of polling cgroup.procs on a timer (a 50us
/// nanosleep costs ~150us here with default timer slack).
pub(crate) struct Killed {
    fds: Vec<OwnedFd>,
    /// Every signalled process has a pidfd (false on kernels < 5.3).
    complete: bool,
}

/// Opens pidfds for `pids` and, if `signal`, SIGKILLs them through the pidfd:
/// a pidfd pins the process, so a pid recycled between reading cgroup.procs
/// and the kill cannot hit an unrelated process. Falls back to kill(2)
/// without pidfd support.
pub(crate) fn kill_pids(pids: &[i32], dir: &Path, signal: bool) -> Result<Killed, CgroupError> {
    let mut k = Killed {
        fds: Vec::with_capacity(pids.len()),
        complete: true,
    };
    for &pid in pids {
        debug_assert!(pid > 0);
        // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                k.complete = false;
                if signal {
                    sigkill(pid, dir)?;
                }
            }
            continue;
        }
        // SAFETY: `raw` is a freshly opened fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
        if !signal {
            k.fds.push(fd);
            continue;
        }
        // SAFETY: valid pidfd, null siginfo is allowed, flags 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == 0 {
            k.fds.push(fd);
        } else {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(CgroupError::io(Op::Kill, dir.join("cgroup.procs"), e));
            }
        }
    }
    Ok(k)
}

impl Killed {
    /// Waits until every signalled process has exited (a pidfd turns readable
    /// after the task has left its cgroups) or `budget` passes; without
    /// pidfds, sleeps one backoff step instead.
    pub(crate) fn wait(self, budget: Duration, backoff: &mut Backoff) {
        let deadline = Instant::now() + budget;
        for fd in &self.fds {
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            // SAFETY: one valid pollfd for the duration of the call.
            if unsafe { libc::poll(&mut pfd, 1, ceil_ms(left)) } == 0 {
                break; // timed out: let the caller re-read and maybe re-kill
            }
        }
        if !self.complete || self.fds.is_empty() {
            backoff.sleep();
        }
    }
}

/// poll(2) timeout in whole milliseconds, rounded up so we never spin.
pub(crate) fn ceil_ms(d: Duration) -> libc::c_int {
    d.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int
}

/// Exponential backoff from 50us to 5ms, for waits with no event to block on.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff(Duration::from_micros(50))
    }
    pub(crate) fn sleep(&mut self) {
        thread::sleep(self.0);
        self.0 = (self.0 * 2).min(Duration::from_millis(5));
    }
}

/// How long kill_all keeps trying before reporting `KillTimeout`.
pub(crate) const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one wait for killed processes to exit may block before the
/// caller re-reads the group (and possibly kills newcomers).
pub(crate) const EXIT_WAIT: Duration = Duration::from_millis(10);
/// Processes already SIGKILLed are not signalled again for this long
/// (each v1 kill round costs a freeze/thaw pair).
pub(crate) const REKILL_AFTER: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        assert_eq!(fmt_u64(&mut b, 1234567), b"1234567");
        assert_eq!(fmt_u64(&mut b, u64::MAX), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn parses_keyed() {
        let p = Path::new("x");
        let c = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(p, c, "oom_kill").unwrap(), Some(3));
        assert_eq!(keyed(p, c, "missing").unwrap(), None);
        assert!(keyed(p, "oom_kill x\n", "oom_kill").is_err());
        assert_eq!(parse_u64(p, "max").unwrap(), u64::MAX);
    }
}

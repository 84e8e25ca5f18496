//! Run a closure in a forked child so filters/landlock never touch the harness.
#![allow(dead_code)]

use std::io::Read;
use std::os::fd::FromRawFd;

/// How the child ended, plus the message it sent back.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Closure returned Ok(msg).
    Ok(String),
    /// Closure returned Err(msg) or panicked.
    Failed(String),
    /// Child killed by this signal (e.g. SIGSYS from a seccomp kill).
    Signaled(i32),
    /// Any other exit.
    Other(String),
}

impl Outcome {
    /// Panics (in the parent) unless the child returned Ok; returns its message.
    #[track_caller]
    pub fn expect_ok(self) -> String {
        match self {
            Outcome::Ok(m) => m,
            other => panic!("child failed: {other:?}"),
        }
    }
}

/// Forks; the child runs `f` and `_exit`s, reporting through a pipe with raw
/// `write(2)` (no std locks in the child of a multi-threaded parent).
pub fn run_in_child<F>(f: F) -> Outcome
where
    F: FnOnce() -> Result<String, String>,
{
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fork; the child only runs `f` and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let (code, msg) = match result {
            Ok(Ok(m)) => (0, m),
            Ok(Err(m)) => (1, m),
            Err(_) => (2, "panicked".to_string()),
        };
        let bytes = msg.as_bytes();
        let mut off = 0;
        while off < bytes.len() {
            // SAFETY: writing from a live buffer to our pipe end.
            let n = unsafe { libc::write(fds[1], bytes[off..].as_ptr().cast(), bytes.len() - off) };
            if n <= 0 {
                break;
            }
            off += n as usize;
        }
        // SAFETY: terminate the child without running the harness's atexit/destructors.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing the parent's copy of the write end; owning the read end.
    unsafe { libc::close(fds[1]) };
    let mut reader = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let mut msg = String::new();
    let _ = reader.read_to_string(&mut msg);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    if libc::WIFSIGNALED(status) {
        return Outcome::Signaled(libc::WTERMSIG(status));
    }
    match libc::WEXITSTATUS(status) {
        0 => Outcome::Ok(msg),
        1 | 2 => Outcome::Failed(msg),
        c => Outcome::Other(format!("exit {c}: {msg}")),
    }
}

/// errno of the last failed call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Turns a raw return value into Ok(value) / Err(errno).
pub fn sys(ret: i64) -> Result<i64, i32> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

/// Installs the shipped policy in the current (child) process.
pub fn install_policy() -> Result<(), String> {
    let f = warden_confine::load_seccomp_filter().map_err(|e| format!("load: {e:?}"))?;
    warden_confine::apply_seccomp(&f).map_err(|e| format!("apply: {e:?}"))
}

/// Reads a hex capability mask line (e.g. "CapEff") from /proc/self/status.
pub fn proc_status_field(name: &str) -> Result<String, String> {
    let s = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    s.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("{name} not in /proc/self/status"))
}

//! Test scaffolding: a guard owning a unique parent group and the child
//! processes, cleaning both up on drop (also when a test panics).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use warden_cgroups::{Cgroup, Limits, Manager};

pub const UNIFIED: &str = "/sys/fs/cgroup/unified";

pub struct Env {
    mgr: Option<Manager>,
}

impl Env {
    /// Host-detected mode (v1 on this hybrid machine).
    pub fn detect(tag: &str) -> Env {
        let parent = format!("warden-test-{}-{tag}", std::process::id());
        Env {
            mgr: Some(Manager::detect(&parent).expect("detect")),
        }
    }

    /// The (controller-less) cgroup2 mount of a hybrid host.
    pub fn v2(tag: &str) -> Env {
        let parent = format!("warden-test-{}-{tag}", std::process::id());
        Env {
            mgr: Some(Manager::v2_at(Path::new(UNIFIED), &parent).expect("v2_at")),
        }
    }

    pub fn mgr(&self) -> &Manager {
        self.mgr.as_ref().expect("manager")
    }

    pub fn create(&self, name: &str, limits: &Limits) -> Cgroup {
        self.mgr().create(name, limits).expect("create")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Some(mgr) = self.mgr.take() else { return };
        for name in mgr.list().unwrap_or_default() {
            if let Ok(Some(cg)) = mgr.open(&name) {
                if let Err(e) = cg.destroy() {
                    eprintln!("cleanup: destroy {name}: {e}");
                }
            }
        }
        if let Err(e) = mgr.remove_parent() {
            eprintln!("cleanup: remove parent: {e}");
        }
    }
}

/// A child process killed and reaped on drop.
pub struct Proc(pub Child);

impl Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}
impl DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Lets a `gated` script continue past its initial `read`.
    pub fn release(&mut self) {
        let stdin = self.0.stdin.as_mut().expect("stdin piped");
        stdin.write_all(b"go\n").expect("write stdin");
        stdin.flush().expect("flush");
    }

    pub fn read_line(&mut self) -> String {
        let out = self.0.stdout.take().expect("stdout piped");
        let mut r = BufReader::new(out);
        let mut line = String::new();
        r.read_line(&mut line).expect("read stdout");
        line.trim().to_string()
    }

    pub fn wait_timeout(&mut self, t: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.0.try_wait().expect("try_wait") {
                return st;
            }
            assert!(start.elapsed() < t, "child did not exit within {t:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub fn spawn_sleep() -> Proc {
    Proc(
        Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    )
}

/// `sh -c 'read _; <script>'`: the shell blocks until `release()`, so it can
/// be moved into a cgroup before it forks anything.
pub fn gated(script: &str) -> Proc {
    Proc(
        Command::new("sh")
            .arg("-c")
            .arg(format!("read _; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh"),
    )
}

/// A gated shell that starts a double-forked, setsid'd `sleep` daemon, prints
/// the daemon's pid, then sleeps itself.
pub fn daemonizer() -> Proc {
    gated(r#"setsid sh -c 'sleep 1000 >/dev/null 2>&1 & echo $!'; exec sleep 1000"#)
}

/// True once `pid` no longer exists or is a zombie awaiting its new parent.
pub fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

pub fn wait_dead(pid: i32) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Session id of `pid` (to prove the daemon really left our session).
pub fn sid(pid: i32) -> i32 {
    // SAFETY: getsid has no memory-safety preconditions.
    unsafe { libc::getsid(pid) }
}

pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

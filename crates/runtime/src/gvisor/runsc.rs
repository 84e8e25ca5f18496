//! Invoking `runsc`: one place that knows its command line.
//!
//! runsc 2022 (Debian's) has no `--preserve-fds`, so the control channel is
//! the container process's stdin: `runsc run` (not detached) donates its
//! stdio to the sandbox, and gVisor imports a host Unix socket there as a
//! socket. The init is started with `--control-fd 0`.

use super::GvisorError;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `runsc run` writes the sandbox process's pid, in the bundle.
pub const PID_FILE: &str = "sandbox.pid";

#[derive(Debug, Clone)]
pub struct Runsc {
    pub binary: PathBuf,
    /// runsc's own state directory (`--root`).
    pub root: PathBuf,
    pub platform: String,
}

impl Runsc {
    /// A command with the global flags every invocation needs. No network
    /// at all: the sandbox gets only gVisor's own loopback.
    pub fn command(&self) -> Command {
        self.command_on("none")
    }

    /// A command with the global flags and a given `--network` mode.
    fn command_on(&self, network: &str) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root")
            .arg(&self.root)
            .arg(format!("--platform={}", self.platform))
            .arg(format!("--network={network}"));
        c
    }

    /// Starts `runsc run` for the bundle as a child: it lives as long as the
    /// container and removes the container's state when the container ends.
    /// `control` becomes the container process's stdin; runsc's own
    /// messages go to `log`. With `netns` (a sandbox with an egress
    /// allowlist, see `egress.rs`) runsc runs in that namespace with host
    /// networking; without, the sandbox has no network at all.
    ///
    /// With `from` (a checkpoint's image directory) it is `runsc restore`
    /// instead: the sandbox goes on from the checkpoint, and the init's
    /// stdin, which the checkpoint kept as a host descriptor, is `control`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        bundle: &Path,
        id: &str,
        control: std::os::fd::OwnedFd,
        log: std::fs::File,
        netns: Option<std::os::fd::OwnedFd>,
        overlay: Option<&str>,
        from: Option<&Path>,
    ) -> Result<Child, GvisorError> {
        let mut c = match &netns {
            Some(_) => self.command_on("host"),
            None => self.command(),
        };
        c.args(overlay);
        if let Some(ns) = netns {
            // SAFETY: `enter` only calls setns (async-signal-safe).
            unsafe { c.pre_exec(move || super::egress::enter(&ns)) };
        }
        match from {
            Some(image) => c
                .arg("restore")
                .arg(format!("--image-path={}", image.display())),
            None => c.arg("run"),
        };
        c.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(bundle.join(PID_FILE))
            .arg(id)
            .stdin(Stdio::from(control))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            // Its own process group, so a Ctrl-C at the terminal reaches
            // `warden run` (which stops the command cleanly) and not runsc.
            .process_group(0);
        c.spawn().map_err(|e| GvisorError::Runsc {
            what: "start runsc run",
            detail: e.to_string(),
        })
    }

    /// `runsc checkpoint`: saves container `id` whole into the directory
    /// `image`, then ends it (its `runsc run` exits).
    pub fn checkpoint(&self, id: &str, image: &Path) -> Result<(), GvisorError> {
        let path = format!("--image-path={}", image.display());
        self.quick(&["checkpoint", &path, id], "runsc checkpoint")
    }

    /// `runsc kill <id> KILL`: ends the container's init and with it every
    /// process in the sandbox. Errors (e.g. already stopped) are returned
    /// for logging only.
    pub fn kill(&self, id: &str) -> Result<(), GvisorError> {
        self.quick(&["kill", id, "KILL"], "runsc kill")
    }

    /// `runsc delete --force <id>`: removes whatever is left of a container.
    pub fn delete(&self, id: &str) -> Result<(), GvisorError> {
        self.quick(&["delete", "--force", id], "runsc delete")
    }

    /// Ids of the containers runsc knows under our `--root`.
    pub fn list(&self) -> Result<Vec<String>, GvisorError> {
        let out = self
            .command()
            .args(["list", "--quiet"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| GvisorError::Runsc {
                what: "runsc list",
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(GvisorError::Runsc {
                what: "runsc list",
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    fn quick(&self, args: &[&str], what: &'static str) -> Result<(), GvisorError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| GvisorError::Runsc {
                what,
                detail: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(GvisorError::Runsc {
                what,
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// Waits for `child` up to `limit`; kills its whole process group if it is
/// still running then. Returns whether it exited by itself and successfully.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    if exits_within(child, limit) {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
    }
    // The child leads its own group (see `run`); the group id is its pid.
    if let Ok(pid) = i32::try_from(child.id()) {
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Whether `child` exits within `limit`, woken the moment it does through
/// a pidfd (runsc winds a killed sandbox down in a few milliseconds, finer
/// than any polling interval worth spinning on). Falls back to polling
/// where pidfds are unavailable.
fn exits_within(child: &mut Child, limit: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let deadline = Instant::now() + limit;
    let pidfd =
        Pid::from_raw(child.id() as i32).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match &pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                let t = Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                };
                let _ = poll(&mut fds, Some(&t));
            }
            None => {
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// SIGKILLs the sandbox process (the Sentry) of a live `runsc run` child,
/// which ends every application process with it; `runsc run` then removes
/// the container itself. Much cheaper than `runsc kill` (another runsc
/// start-up). Only a pid whose parent is `child` is signalled, so a stale
/// or recycled pid is never hit. Returns whether a signal was sent.
pub fn kill_sandbox_process(bundle: &std::path::Path, child: &Child) -> bool {
    let Ok(text) = std::fs::read_to_string(bundle.join(PID_FILE)) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ppid = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    if ppid != Some(child.id()) {
        return false;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}

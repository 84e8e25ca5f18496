//! How an `Exec` request becomes a process: its argv or shell line, its
//! environment and working directory (a session's, when it names one), a
//! start that does not fork the init; and how its end reads (`waitpid`'s
//! status as an exit code or a signal).

use crate::session;
use crate::State;
use std::process::Child;
use warden_protocol::{Command, ErrorKind, ExecRequest, ExitStatus, Response};

/// The command to run and the directory it runs in.
pub fn build_command(
    state: &State,
    req: &ExecRequest,
) -> Result<(std::process::Command, String), Response> {
    let sess = req
        .session
        .as_deref()
        .map(|name| session::snapshot(&state.sessions, name));
    let mut cmd = match &req.command {
        Command::Argv(argv) => {
            let Some(prog) = argv.first() else {
                return Err(Response::error(ErrorKind::BadRequest, "empty argv"));
            };
            let mut c = std::process::Command::new(prog);
            c.args(&argv[1..]);
            c
        }
        Command::Shell(line) if req.session.is_some() => session::shell_command(line),
        Command::Shell(line) => {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
    };
    cmd.env_clear();
    let base = sess
        .as_ref()
        .and_then(|s| s.env.clone())
        .unwrap_or_else(|| state.cfg.env.clone());
    cmd.envs(base);
    for (k, v) in &req.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(Response::error(
                ErrorKind::BadRequest,
                format!("invalid environment variable {k:?}"),
            ));
        }
        cmd.env(k, v);
    }
    let cwd = req
        .cwd
        .clone()
        .or_else(|| sess.and_then(|s| s.cwd))
        .unwrap_or_else(|| state.cfg.workdir.clone());
    Ok((cmd, cwd))
}

/// Starts `cmd` in `cwd` without forking the init where possible.
///
/// std starts a command with `posix_spawn` (a `vfork`-style clone: no copy
/// of the init's memory) unless it needs a pre-exec hook or a working
/// directory; the latter goes through a glibc function std looks up at run
/// time, which a statically linked init cannot, so std would fork the whole
/// init instead. So the init steps into `cwd` itself around the spawn and
/// back to `/` at once. Nothing else can see the detour: this thread runs
/// nothing else meanwhile, and every path the init's helper threads use is
/// absolute (`files::resolve`).
pub fn spawn_in(
    cmd: &mut std::process::Command,
    cwd: &str,
    hooked: bool,
) -> std::io::Result<Child> {
    if hooked {
        return cmd.current_dir(cwd).spawn();
    }
    std::env::set_current_dir(cwd)?;
    let child = cmd.spawn();
    let back = std::env::set_current_dir("/");
    let child = child?;
    if let Err(e) = back {
        // Not expected (/ is always there); never leave the init elsewhere.
        // SAFETY: a signal to the child we just started.
        let _ = unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        return Err(e);
    }
    Ok(child)
}

/// A `waitpid` status as the protocol's exit status.
pub fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFEXITED(status) {
        ExitStatus {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
            timed_out: false,
        }
    } else {
        ExitStatus {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
            timed_out: false,
        }
    }
}

//! How an `Exec` request becomes a process: its argv or shell line, its
//! environment and working directory (a session's, when it names one); and
//! how its end reads (`waitpid`'s status as an exit code or a signal). The
//! start itself is `spawn.rs`.

use crate::session;
use crate::spawn::Spawn;
use crate::State;
use warden_protocol::{Command, ErrorKind, ExecRequest, ExitStatus, Response};

/// The command to run and the directory it runs in.
pub fn build_command(state: &State, req: &ExecRequest) -> Result<(Spawn, String), Response> {
    let sess = req
        .session
        .as_deref()
        .map(|name| session::snapshot(&state.sessions, name));
    let mut cmd = match &req.command {
        Command::Argv(argv) => {
            let Some(prog) = argv.first() else {
                return Err(Response::error(ErrorKind::BadRequest, "empty argv"));
            };
            let mut c = Spawn::new(prog);
            c.args(&argv[1..]);
            c
        }
        Command::Shell(line) if req.session.is_some() => session::shell_command(line),
        Command::Shell(line) => {
            let mut c = Spawn::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
    };
    let base = sess
        .as_ref()
        .and_then(|s| s.env.clone())
        .unwrap_or_else(|| state.cfg.env.clone());
    for (k, v) in base {
        cmd.env(k, v);
    }
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

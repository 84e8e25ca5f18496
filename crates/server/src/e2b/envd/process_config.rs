//! An E2B process config as the init's exec request, and back: what
//! `process.Start` runs (and what the command policy judges), and what
//! `process.List` says of a process started through the native API.

use super::paths;
use warden_envd_wire::connect::Error;
use warden_envd_wire::process::ProcessConfig;
use warden_protocol::{Command, ExecRequest};

/// The init request for an E2B process config: argv as given (E2B's
/// `commands.run` sends `/bin/bash -l -c <line>`), its env, its cwd
/// (relative to the home).
pub(super) fn exec_request(config: &ProcessConfig, stdin: bool) -> Result<ExecRequest, Error> {
    let mut argv = vec![config.cmd.clone()];
    argv.extend(config.args.iter().cloned());
    let mut env = Vec::with_capacity(config.envs.len());
    for (k, v) in &config.envs {
        warden_spec::check_env_name(k).map_err(|e| Error::invalid_argument(e.to_string()))?;
        env.push((k.clone(), v.clone()));
    }
    env.sort();
    let cwd = match config.cwd.as_deref() {
        Some(c) if !c.is_empty() => Some(paths::absolute(c)?),
        _ => None,
    };
    Ok(ExecRequest {
        command: Command::Argv(argv),
        cwd,
        env,
        stdin,
        timeout_ms: None,
        background: true,
        session: None,
        pty: None,
    })
}

/// `[sh|bash, (-l), -c, LINE]` (any path to either shell) as the shell
/// line it runs. Only a login flag may come before `-c`: in
/// `[bash, SCRIPT, -c, LINE]` bash runs SCRIPT (with `-c` and LINE as its
/// arguments), so that argv is judged as the whole argv it is.
pub(super) fn shell_line(command: &Command) -> Option<Command> {
    let Command::Argv(argv) = command else {
        return None;
    };
    let shell = argv.first()?.rsplit('/').next()?;
    if !matches!(shell, "sh" | "bash" | "dash") {
        return None;
    }
    match &argv[1..] {
        [c, line] if c == "-c" => Some(Command::Shell(line.clone())),
        [l, c, line] if c == "-c" && matches!(l.as_str(), "-l" | "--login") => {
            Some(Command::Shell(line.clone()))
        }
        _ => None,
    }
}

/// A process the init started for someone else (the native API): its
/// config as far as the command tells.
pub(super) fn config_of(command: &Command) -> ProcessConfig {
    let (cmd, args) = match command {
        Command::Argv(a) => (
            a.first().cloned().unwrap_or_default(),
            a.iter().skip(1).cloned().collect(),
        ),
        Command::Shell(line) => ("/bin/sh".into(), vec!["-c".into(), line.clone()]),
    };
    ProcessConfig {
        cmd,
        args,
        envs: Default::default(),
        cwd: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Command {
        Command::Argv(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn shell_invocations_are_judged_by_their_line() {
        let line = |c: Command| shell_line(&c);
        assert_eq!(
            line(argv(&["/bin/bash", "-l", "-c", "touch x"])),
            Some(Command::Shell("touch x".into()))
        );
        assert_eq!(
            line(argv(&["sh", "-c", "ls"])),
            Some(Command::Shell("ls".into()))
        );
        assert_eq!(line(argv(&["/usr/bin/python3", "-c", "print(1)"])), None);
        assert_eq!(line(argv(&["bash", "script.sh"])), None);
        assert_eq!(line(argv(&["bash", "-c", "ls", "extra"])), None);
        // bash runs the script, not the line after `-c` (issue 15, item 16).
        assert_eq!(line(argv(&["bash", "/tmp/x.sh", "-c", "ls"])), None);
        assert_eq!(
            line(argv(&["/bin/sh", "--login", "-c", "ls"])),
            Some(Command::Shell("ls".into()))
        );
    }
}

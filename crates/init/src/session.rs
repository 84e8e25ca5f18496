//! Sessions: the working directory and environment a shell command ends with
//! carry into the next command of the same session.
//!
//! A session shell command runs under a small wrapper whose EXIT trap writes
//! `pwd` and `env -0` to fd 3, a pipe only that wrapper holds: the user's
//! command itself runs with fd 3 closed, so it still sees only 0, 1 and 2.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Largest state a command may hand back (cwd + environment).
pub const MAX_CAPTURE: usize = 1 << 20;

/// Variables that describe the shell, not the session.
const SKIP: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_"];

const WRAPPER: &str = r#"__warden_cmd=$1
trap '__warden_rc=$?; { pwd; printf "\000"; env -0; } >&3 2>/dev/null; exit $__warden_rc' EXIT
{ eval "$__warden_cmd"; } 3>&-"#;

#[derive(Debug, Clone, Default)]
pub struct Session {
    pub cwd: Option<String>,
    pub env: Option<Vec<(String, String)>>,
}

pub type Sessions = RefCell<HashMap<String, Session>>;

/// The state a command in session `name` starts from (empty when new).
pub fn snapshot(sessions: &Sessions, name: &str) -> Session {
    sessions.borrow().get(name).cloned().unwrap_or_default()
}

pub fn shell_command(line: &str) -> crate::spawn::Spawn {
    let mut c = crate::spawn::Spawn::new("/bin/sh");
    c.arg("-c").arg(WRAPPER).arg("sh").arg(line);
    c
}

/// Records what a session command reported; ignores anything malformed
/// (the session then keeps its previous state).
pub fn apply_capture(sessions: &Sessions, name: &str, bytes: &[u8]) {
    if let Some(s) = parse_capture(bytes) {
        sessions.borrow_mut().insert(name.to_string(), s);
    }
}

fn parse_capture(bytes: &[u8]) -> Option<Session> {
    let mut parts = bytes.split(|b| *b == 0);
    let cwd = std::str::from_utf8(parts.next()?)
        .ok()?
        .trim_end_matches('\n');
    if !cwd.starts_with('/') {
        return None;
    }
    let mut env = Vec::new();
    for entry in parts {
        if entry.is_empty() {
            continue;
        }
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        if let Some((k, v)) = entry.split_once('=') {
            if !k.is_empty() && !SKIP.contains(&k) {
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    Some(Session {
        cwd: Some(cwd.to_string()),
        env: Some(env),
    })
}

/// The pipe a session command reports its final state through.
pub struct Capture {
    read: OwnedFd,
    write: OwnedFd,
}

impl Capture {
    pub fn new() -> std::io::Result<Capture> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        // The init's end is read by its reactor; the shell's stays blocking.
        rustix::io::ioctl_fionbio(&read, true)?;
        Ok(Capture { read, write })
    }

    /// The write end's number, dup'ed onto fd 3 in the child (dup2 clears
    /// CLOEXEC on the copy only).
    pub fn child_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// The read end; the write end is closed here so that EOF comes when the
    /// command's shell exits.
    pub fn into_reader(self) -> OwnedFd {
        drop(self.write);
        self.read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_parses_cwd_and_env() {
        let s = parse_capture(b"/scratch/x\n\0A=1\0PWD=/x\0B=two=2\0\xff=bad\0").unwrap();
        assert_eq!(s.cwd.as_deref(), Some("/scratch/x"));
        assert_eq!(
            s.env.unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "two=2".into())]
        );
    }

    #[test]
    fn malformed_capture_is_ignored() {
        assert!(parse_capture(b"").is_none());
        assert!(parse_capture(b"relative\n\0A=1").is_none());
        assert!(parse_capture(b"\xff\xfe\0").is_none());
    }
}

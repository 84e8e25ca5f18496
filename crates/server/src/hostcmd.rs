//! Operator programs run on the host on a request's behalf (the upload
//! scanner, the command-policy hook): with a deadline, their output capped,
//! and never left running.
//!
//! Each runs in a process group of its own, and that whole group is killed
//! when the run ends for any reason: on the deadline, when the caller's
//! future is dropped (a client that went away), and after a normal exit, so
//! a helper the program forked cannot outlive it (and cannot hold its
//! output pipe open until the deadline either, past the first answer).

use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Bytes kept of each output stream; the rest is read and dropped so the
/// program never blocks on a full pipe.
pub const MAX_OUTPUT: usize = 64 << 10;

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the command is empty")]
    Empty,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} gave no answer within {ms} ms and was killed")]
    TimedOut { program: String, ms: u128 },
    #[error("{program}: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

/// Kills a process group when dropped (unless disarmed).
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: plain syscall; ESRCH (nothing left) is fine. The id
            // cannot name someone else's group: it stays allocated while
            // any member (or the unreaped leader) exists, and pids are
            // handed out cyclically, so it is not reused within a run.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `argv` with `input` on its stdin (then closed; `None`: /dev/null)
/// and returns its exit status and output once it exits, or an error if it
/// cannot be started or is not done within `timeout`.
pub async fn run(
    argv: &[String],
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, RunError> {
    let (program, args) = argv.split_first().ok_or(RunError::Empty)?;
    let mut cmd = tokio::process::Command::new(program);
    // Warden's own settings (the admin token, the signing key, ...) are no
    // business of the programs it calls.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("WARDEN_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Reaps the leader if the run is abandoned; the guard below takes
        // care of the rest of its group.
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    let io_err = |source| RunError::Io {
        program: program.clone(),
        source,
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(data)) = (stdin, input) {
                // A program that answers without reading its input closes
                // the pipe: not an error of ours.
                let _ = pipe.write_all(&data).await;
            }
        };
        let (_, out, err) = tokio::join!(feed, capped(stdout), capped(stderr));
        let status = child.wait().await.map_err(io_err)?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
        })
    };
    let result = tokio::time::timeout(timeout, work).await;
    group.kill();
    match result {
        Ok(r) => r,
        Err(_) => {
            // Reap the killed leader now rather than leave a zombie behind
            // (bounded: a process stuck in the kernel is left to tokio).
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            Err(RunError::TimedOut {
                program: program.clone(),
                ms: timeout.as_millis(),
            })
        }
    }
}

/// Reads a stream to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn capped(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut s) = stream else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    kept
}

/// The first non-blank line of a program's output, trimmed and cut to
/// `max` bytes (on a character boundary).
pub fn first_line(bytes: &[u8], max: usize) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(cut(line, max).to_string())
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    /// Exists and is not a zombie (an orphan waits for its reaper).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    }

    #[tokio::test]
    async fn input_in_output_out() {
        let out = run(
            &sh("tr a-z A-Z"),
            Some(b"hello".to_vec()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"HELLO");
        let out = run(&sh("echo oops >&2; exit 3"), None, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            (out.status.code(), out.stderr.as_slice()),
            (Some(3), &b"oops\n"[..])
        );
        let e = run(
            &["/nonexistent/x".to_string()],
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot run /nonexistent/x"),
            "{e}"
        );
        assert!(matches!(
            run(&[], None, Duration::from_secs(1)).await,
            Err(RunError::Empty)
        ));
    }

    #[tokio::test]
    async fn a_hung_program_and_its_children_are_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // A child in the background and one in the foreground, both
        // holding the output pipe.
        let script = format!(
            "sleep 60 & echo $! > {0}; echo $$ >> {0}; sleep 60",
            pids.display()
        );
        let t0 = Instant::now();
        let e = run(&sh(&script), None, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, RunError::TimedOut { .. }), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        let listed = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<i32> = listed
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        assert_eq!(pids.len(), 2, "{listed}");
        let t0 = Instant::now();
        while pids.iter().any(|&p| alive(p)) && t0.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!pids.iter().any(|&p| alive(p)), "left running: {pids:?}");
    }

    #[tokio::test]
    async fn output_is_capped_without_blocking_the_program() {
        let out = run(
            &sh("head -c 1000000 /dev/zero; echo done >&2"),
            None,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(
            (out.stdout.len(), out.stderr.as_slice()),
            (MAX_OUTPUT, &b"done\n"[..])
        );
    }

    #[test]
    fn lines_are_cut_on_character_boundaries() {
        assert_eq!(
            first_line(b"\n  \n  first  \nsecond", 100).as_deref(),
            Some("first")
        );
        assert_eq!(first_line("ééé".as_bytes(), 3).as_deref(), Some("é"));
        assert_eq!(first_line(b"  \n", 10), None);
    }
}

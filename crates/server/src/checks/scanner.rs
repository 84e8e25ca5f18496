//! The operator's scanner hook (e.g. ClamAV's `clamdscan`): a command run
//! on each upload that passed the type and archive checks. Its exit code is
//! the verdict, as clamscan/clamdscan report it: 0 clean, 1 flagged,
//! anything else a failure of the scanner itself.

use crate::hostcmd::{self, first_line};
use std::path::Path;
use std::time::Duration;

/// Longest scanner line kept (in a verdict, an error or the audit).
const MAX_LINE: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The scanner's line saying what it found.
    Flagged(String),
    /// The scanner could not give a verdict: why.
    Failed(String),
}

/// Runs `argv` with `{path}` replaced by `path` (appended when no argument
/// has it). The scanner's output names the file by `shown` (the upload's
/// name), never by the server's storage path.
pub async fn scan(argv: &[String], path: &Path, shown: &str, timeout: Duration) -> Verdict {
    let Some(program) = argv.first() else {
        return Verdict::Failed("the scanner command is empty".into());
    };
    let p = path.to_string_lossy();
    let mut cmd: Vec<String> = argv.iter().map(|a| a.replace("{path}", &p)).collect();
    if !argv.iter().any(|a| a.contains("{path}")) {
        cmd.push(p.to_string());
    }
    let out = match hostcmd::run(&cmd, None, timeout).await {
        Ok(out) => out,
        Err(e) => return Verdict::Failed(e.to_string()),
    };
    let line = first_line(&out.stdout, MAX_LINE)
        .or_else(|| first_line(&out.stderr, MAX_LINE))
        .map(|l| l.replace(p.as_ref(), shown));
    match out.status.code() {
        Some(0) => Verdict::Clean,
        Some(1) => Verdict::Flagged(line.unwrap_or_else(|| format!("{program} flagged it"))),
        _ => Verdict::Failed(match line {
            Some(l) => format!("{program} {}: {l}", out.status),
            None => format!("{program} {}", out.status),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec![
            "/bin/sh".into(),
            "-c".into(),
            script.into(),
            "scanner".into(),
            "{path}".into(),
        ]
    }

    #[tokio::test]
    async fn exit_codes_are_verdicts() {
        let p = Path::new("/tmp/objects/file_x");
        let t = Duration::from_secs(5);
        assert_eq!(scan(&sh("exit 0"), p, "a.csv", t).await, Verdict::Clean);
        assert_eq!(
            scan(&sh("echo \"$1: Eicar FOUND\"; exit 1"), p, "a.csv", t).await,
            Verdict::Flagged("a.csv: Eicar FOUND".into())
        );
        let Verdict::Failed(why) = scan(&sh("echo boom >&2; exit 2"), p, "a.csv", t).await else {
            panic!("not a failure");
        };
        assert!(
            why.contains("boom") && why.contains("exit status: 2"),
            "{why}"
        );
        let slow = scan(&sh("sleep 10"), p, "a.csv", Duration::from_millis(200)).await;
        assert!(matches!(slow, Verdict::Failed(w) if w.contains("no answer within 200 ms")));
        let missing = scan(&["/nonexistent/scanner".to_string()], p, "a", t).await;
        assert!(matches!(missing, Verdict::Failed(w) if w.contains("cannot run")));
    }
}

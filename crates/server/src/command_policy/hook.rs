//! The operator's policy hook: a host program asked about each command the
//! patterns let through (for tenants whose policy says `hook: true`). It
//! gets a [`HookRequest`] as JSON on stdin and answers on stdout with one
//! JSON object, `{"allow": true|false, "reason": "…"}`, then exits 0.
//!
//! Anything else fails closed: not runnable, a non-zero exit or a signal,
//! output that is not that object, or no answer within the timeout (then
//! the hook's whole process group is killed; see `hostcmd`).

use crate::hostcmd::{self, cut, first_line};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest reason (or error detail) kept from a hook.
const MAX_REASON: usize = 300;

/// What the hook is told. Environment variables are named, never valued
/// (they may hold secrets the hook has no business with).
#[derive(Debug, Serialize)]
pub struct HookRequest<'a> {
    /// `exec` (a command in a running sandbox) or `review` (a review job's
    /// command, at submit and again when a worker starts it).
    pub kind: &'a str,
    pub tenant: &'a str,
    /// The API key id (or `system` for a review job's run).
    pub actor: &'a str,
    /// The sandbox (for `exec`); for `review`, the job's id once it has one.
    pub sandbox: Option<&'a str>,
    pub review: Option<&'a str>,
    /// Exactly one of `argv` and `shell` is set.
    pub argv: Option<&'a [String]>,
    pub shell: Option<&'a str>,
    /// What the patterns were matched against.
    pub command_line: &'a str,
    pub cwd: Option<&'a str>,
    pub env: Vec<&'a str>,
    pub background: bool,
    pub session: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookVerdict {
    Allow,
    /// The hook's reason (or a default one).
    Deny(String),
    /// No usable answer: why. The command is refused.
    Failed(String),
}

#[derive(Deserialize)]
struct Answer {
    allow: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Printable, one line, capped.
fn clean(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(one.trim(), MAX_REASON).to_string()
}

/// Asks the hook `argv` about `req`.
pub async fn ask(argv: &[String], req: &HookRequest<'_>, timeout: Duration) -> HookVerdict {
    let program = argv.first().map(String::as_str).unwrap_or("the hook");
    let input = match serde_json::to_vec(req) {
        Ok(v) => v,
        Err(e) => return HookVerdict::Failed(format!("encoding the request: {e}")),
    };
    let out = match hostcmd::run(argv, Some(input), timeout).await {
        Ok(out) => out,
        Err(e) => return HookVerdict::Failed(e.to_string()),
    };
    if !out.status.success() {
        return HookVerdict::Failed(match first_line(&out.stderr, MAX_REASON) {
            Some(l) => format!("{program} {}: {}", out.status, clean(&l)),
            None => format!("{program} {}", out.status),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str::<Answer>(text.trim()) {
        Ok(Answer { allow: true, .. }) => HookVerdict::Allow,
        Ok(Answer {
            allow: false,
            reason,
        }) => HookVerdict::Deny(
            reason
                .map(|r| clean(&r))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "denied by the policy hook".into()),
        ),
        Err(_) => HookVerdict::Failed(format!(
            "{program} answered {:?}, not {{\"allow\": true|false, \"reason\": \"…\"}}",
            clean(&text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn req() -> HookRequest<'static> {
        HookRequest {
            kind: "exec",
            tenant: "tn_a",
            actor: "key_a",
            sandbox: Some("sbx_a"),
            review: None,
            argv: None,
            shell: Some("rm -rf /"),
            command_line: "rm -rf /",
            cwd: None,
            env: vec!["TOKEN"],
            background: false,
            session: None,
        }
    }

    async fn ask_sh(script: &str) -> HookVerdict {
        ask(&sh(script), &req(), Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn answers_are_honoured_and_anything_else_fails_closed() {
        assert_eq!(
            ask_sh(r#"cat >/dev/null; echo '{"allow": true}'"#).await,
            HookVerdict::Allow
        );
        // The hook sees the request, with env names only.
        let script = r#"in=$(cat); case "$in" in
            *'"shell":"rm -rf /"'*'"env":["TOKEN"]'*) printf '%s' '{"allow": false, "reason": "no\nrm"}';;
            *) echo '{"allow": true}';; esac"#;
        assert_eq!(ask_sh(script).await, HookVerdict::Deny("no rm".into()));
        assert_eq!(
            ask_sh(r#"echo '{"allow": false}'"#).await,
            HookVerdict::Deny("denied by the policy hook".into())
        );
        let failed = |v: HookVerdict| match v {
            HookVerdict::Failed(why) => why,
            other => panic!("not a failure: {other:?}"),
        };
        let why = failed(ask_sh(r#"echo '{"allow": true}'; echo boom >&2; exit 3"#).await);
        assert!(why.contains("exit status: 3: boom"), "{why}");
        let why = failed(ask_sh("echo yes").await);
        assert!(why.contains("answered \"yes\", not"), "{why}");
        let why = failed(ask_sh(r#"echo '{"allow": "yes"}'"#).await);
        assert!(why.contains("not {\"allow\""), "{why}");
        let why = failed(ask_sh("kill -9 $$").await);
        assert!(why.contains("signal: 9"), "{why}");
        let why = failed(ask(&sh("sleep 30"), &req(), Duration::from_millis(200)).await);
        assert!(why.contains("no answer within 200 ms"), "{why}");
        let why = failed(
            ask(
                &["/nonexistent/hook".into()],
                &req(),
                Duration::from_secs(1),
            )
            .await,
        );
        assert!(why.starts_with("cannot run /nonexistent/hook"), "{why}");
    }
}

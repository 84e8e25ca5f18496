//! `warden exec SANDBOX -- CMD…`: runs a command in a sandbox and streams
//! its output as Server-Sent Events, then exits with the command's status:
//! its exit code; 128+N for a signal N; 124 when it timed out; 127 / 126
//! when it cannot be found / executed; 125 for Warden's own errors. The
//! events themselves are handled in `events.rs`.

use super::events::{finish_json, handle_event};
use super::http::Api;
use super::{output, parse, Server, TenantAuth};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::io::Write;

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    /// The sandbox to run in (`sbx_…`).
    #[arg(value_name = "SANDBOX_ID")]
    pub sandbox: String,
    /// Working directory for the command.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// Stop the command after this long, e.g. 30s (exit status 124).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Carry the working directory and environment between calls with the
    /// same session name.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,
    /// Run COMMAND as one shell line (its words joined by spaces).
    #[arg(long)]
    pub shell: bool,
    /// Run COMMAND on a terminal, interactively: what you type goes to it
    /// (this terminal in raw mode: Ctrl-C reaches the command), and its
    /// size follows this terminal's. Needs a terminal on stdin.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The exec request body.
pub fn exec_body(a: &ExecArgs) -> Result<Value> {
    let mut b = Map::new();
    if a.shell {
        b.insert("shell".into(), a.command.join(" ").into());
    } else {
        b.insert("command".into(), json!(a.command));
    }
    if let Some(c) = &a.cwd {
        b.insert("cwd".into(), c.clone().into());
    }
    if !a.env.is_empty() {
        b.insert("env".into(), json!(parse::env(&a.env)?));
    }
    if let Some(t) = &a.timeout {
        b.insert(
            "timeout_secs".into(),
            parse::duration_secs("--timeout", t)?.into(),
        );
    }
    if let Some(s) = &a.session {
        b.insert("session".into(), s.clone().into());
    }
    Ok(Value::Object(b))
}

pub async fn run(a: ExecArgs) -> Result<i32> {
    let body = exec_body(&a)?;
    let api = Api::tenant(&a.server, &a.auth)?;
    if a.tty {
        return super::exec_tty::run(&api, &a.sandbox, body).await;
    }
    let rb = api
        .request(Method::POST, &["v1", "sandboxes", &a.sandbox, "exec"])?
        .json(&body);
    if a.server.json {
        let v = api.json(rb).await?;
        output::json(&v)?;
        return finish_json(&v, false);
    }
    let resp = api.send(rb.header(ACCEPT, "text/event-stream")).await?;
    let streaming = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
    if !streaming {
        let v: Value = resp
            .json()
            .await
            .context("the server's answer is neither an event stream nor JSON")?;
        return finish_json(&v, true);
    }
    stream(&api, resp, &mut std::io::stdout(), &mut std::io::stderr()).await
}

/// Follows the event stream of a running command to its end.
pub async fn stream(
    api: &Api,
    resp: reqwest::Response,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<i32> {
    let mut events = resp.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            EventStreamError::Transport(e) => {
                anyhow!("the event stream broke off: {}", api.transport(e))
            }
            other => anyhow!("the server sent a malformed event stream: {other}"),
        })?;
        if let Some(code) = handle_event(&event.event, &event.data, stdout, stderr)? {
            return Ok(code);
        }
    }
    bail!("the server closed the event stream before the command ended")
}
#[cfg(test)]
mod tests {
    use super::*;

    fn args(shell: bool, cmd: &[&str]) -> ExecArgs {
        ExecArgs {
            server: Server {
                url: String::new(),
                json: false,
            },
            auth: TenantAuth { api_key: None },
            sandbox: "sbx_1".into(),
            cwd: None,
            env: vec![],
            timeout: None,
            session: None,
            shell,
            tty: false,
            command: cmd.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn bodies_carry_argv_or_a_shell_line() {
        let a = args(false, &["ls", "-l", "a b"]);
        assert_eq!(
            exec_body(&a).unwrap(),
            json!({"command": ["ls", "-l", "a b"]})
        );
        let mut a = args(true, &["echo", "$HOME", "|", "wc"]);
        a.cwd = Some("/scratch".into());
        a.env = vec!["A=1".into()];
        a.timeout = Some("30s".into());
        a.session = Some("s1".into());
        assert_eq!(
            exec_body(&a).unwrap(),
            json!({"shell": "echo $HOME | wc", "cwd": "/scratch", "env": {"A": "1"},
                   "timeout_secs": 30, "session": "s1"})
        );
        a.env = vec!["bad".into()];
        assert!(exec_body(&a).is_err());
    }
}

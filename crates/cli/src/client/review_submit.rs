//! `warden review submit`: the `SubmitReview` body from the flags, the
//! `POST`, and with `--wait`/`--follow` the wait for the job's end.

use super::show::summary;
use super::{exit_status, wait};
use crate::client::http::Api;
use crate::client::output::{self, field};
use crate::client::{note, parse};
use anyhow::{bail, Context, Result};
use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::time::SystemTime;

#[derive(Args, Debug, Default)]
pub struct SubmitArgs {
    /// A stored file to show read-only at /input/<name> (repeatable).
    #[arg(long = "file", value_name = "FILE_ID")]
    pub files: Vec<String>,
    /// `host` or an image the server knows, e.g. python-data (server
    /// default: host).
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Isolation tier: native or gvisor (server default: native).
    #[arg(long, value_name = "TIER")]
    pub isolation: Option<String>,
    /// Wall-clock limit of the command, e.g. 10m (server default 1h, at
    /// most 24h).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Memory limit, e.g. 512M (sent in whole MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU share, e.g. 0.5.
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// Most processes at once.
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Size of the writable areas, e.g. 1G (sent in whole MiB).
    #[arg(long, value_name = "SIZE")]
    pub disk: Option<String>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// A secret of the tenant to set as an environment variable of that
    /// name (repeatable; see `warden secret`). Masked as *** in the logs.
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// A label (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Let the job reach HOST through its egress proxy (repeatable; see
    /// `warden sandbox create --allow-host`).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// POST the finished job to this URL (signed with the tenant's webhook
    /// secret).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// A second submit with the same key gives back the first job.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Run again (up to the server's attempt limit) when the command exits
    /// non-zero.
    #[arg(long)]
    pub retry_on_failure: bool,
    /// Run COMMAND as one shell line (its words joined by spaces).
    #[arg(long)]
    pub shell: bool,
    /// Wait for the job to end; exit 0 succeeded, 1 failed, 124 timed out,
    /// 130 cancelled.
    #[arg(long)]
    pub wait: bool,
    /// Print the job's output as it comes (stdout and stderr, on stdout;
    /// on stderr with --json), then exit as --wait does.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The `SubmitReview` body: `files` and the command always, the rest only
/// when given so the server's defaults apply.
pub fn submit_body(a: &SubmitArgs) -> Result<Value> {
    if a.command.is_empty() {
        bail!("no command given");
    }
    let mut b = Map::new();
    b.insert("files".into(), json!(a.files));
    if a.shell {
        b.insert("shell".into(), a.command.join(" ").into());
    } else {
        b.insert("command".into(), json!(a.command));
    }
    if let Some(i) = &a.image {
        b.insert("image".into(), i.clone().into());
    }
    if let Some(i) = &a.isolation {
        b.insert("isolation".into(), i.clone().into());
    }
    if let Some(t) = &a.timeout {
        b.insert(
            "timeout_secs".into(),
            parse::duration_secs("--timeout", t)?.into(),
        );
    }
    if !a.env.is_empty() {
        b.insert("env".into(), json!(parse::env(&a.env)?));
    }
    if !a.secrets.is_empty() {
        b.insert("secrets".into(), json!(a.secrets));
    }
    if let Some(limits) = parse::limits(a.memory.as_deref(), a.cpus, a.pids, a.disk.as_deref())? {
        b.insert("limits".into(), limits);
    }
    if let Some(n) = crate::client::egress::allowlist_body(&a.allow_host)? {
        b.insert("network".into(), n);
    }
    if !a.labels.is_empty() {
        b.insert("labels".into(), json!(parse::labels(&a.labels)?));
    }
    if let Some(u) = &a.webhook {
        b.insert("webhook_url".into(), u.clone().into());
    }
    if let Some(k) = &a.idempotency_key {
        b.insert("idempotency_key".into(), k.clone().into());
    }
    if a.retry_on_failure {
        b.insert("retry_on_failure".into(), true.into());
    }
    Ok(Value::Object(b))
}

/// `POST /v1/reviews`, then, with `--wait`/`--follow`, waiting for the end.
pub async fn run(api: &Api, a: &SubmitArgs, body: Value, as_json: bool) -> Result<i32> {
    let resp = api
        .send(api.request(Method::POST, &["v1", "reviews"])?.json(&body))
        .await?;
    let replay = resp.status() == StatusCode::OK;
    let bytes = resp.bytes().await.map_err(|e| api.transport(e))?;
    let r: Value = serde_json::from_slice(&bytes).context("the server's answer is not JSON")?;
    let id = r
        .get("id")
        .and_then(Value::as_str)
        .context("unexpected answer from the server: no job id")?
        .to_string();
    if replay {
        note(&format!(
            "the idempotency key was used before: {id} is the job submitted then ({})",
            field(&r, "status")
        ));
    }
    let waiting = a.wait || a.follow;
    if !waiting {
        if as_json {
            output::json(&r)?;
        } else {
            output::out(&format!("{id}\n"))?;
        }
        return Ok(0);
    }
    if !as_json {
        if a.follow {
            // stdout is the job's output alone.
            note(&format!("submitted {id}"));
        } else {
            output::out(&format!("{id}\n"))?;
        }
    }
    let end = match wait::until_end(api, &id, a.follow, as_json).await? {
        Some(end) => end,
        None => {
            note(&format!(
                "stopped waiting; {id} goes on (`warden review cancel {id}` stops it)"
            ));
            return Ok(130);
        }
    };
    if as_json {
        output::json(&end)?;
    }
    note(&summary(&end, SystemTime::now()));
    exit_status(end.get("status").and_then(Value::as_str).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(words: &[&str]) -> SubmitArgs {
        SubmitArgs {
            command: words.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_bare_submit_sends_files_and_the_command_only() {
        assert_eq!(
            submit_body(&cmd(&["python", "x.py"])).unwrap(),
            json!({"files": [], "command": ["python", "x.py"]})
        );
        assert!(submit_body(&cmd(&[])).is_err());
    }

    #[test]
    fn submit_carries_every_flag() {
        let a = SubmitArgs {
            files: vec!["file_1".into(), "file_2".into()],
            image: Some("python-data".into()),
            isolation: Some("gvisor".into()),
            timeout: Some("10m".into()),
            memory: Some("512M".into()),
            cpus: Some(1.5),
            pids: Some(64),
            disk: Some("1G".into()),
            env: vec!["A=1".into(), "B=x=y".into()],
            secrets: vec!["API_KEY".into()],
            labels: vec!["team=ml".into()],
            allow_host: vec!["pypi.org".into()],
            webhook: Some("https://example.com/hook".into()),
            idempotency_key: Some("run-7".into()),
            retry_on_failure: true,
            shell: true,
            wait: true,
            follow: true,
            command: vec![
                "wc".into(),
                "-l".into(),
                "/input/*".into(),
                ">".into(),
                "/output/n".into(),
            ],
        };
        assert_eq!(
            submit_body(&a).unwrap(),
            json!({
                "files": ["file_1", "file_2"],
                "shell": "wc -l /input/* > /output/n",
                "image": "python-data",
                "isolation": "gvisor",
                "timeout_secs": 600,
                "env": {"A": "1", "B": "x=y"},
                "secrets": ["API_KEY"],
                "limits": {"memory_mb": 512, "cpus": 1.5, "pids": 64, "disk_mb": 1024},
                "labels": {"team": "ml"},
                "network": {"mode": "allowlist", "rules": [{"host": "pypi.org"}]},
                "webhook_url": "https://example.com/hook",
                "idempotency_key": "run-7",
                "retry_on_failure": true,
            })
        );
    }

    #[test]
    fn bad_submit_flags_are_refused() {
        let base = || cmd(&["true"]);
        for a in [
            SubmitArgs {
                memory: Some("lots".into()),
                ..base()
            },
            SubmitArgs {
                cpus: Some(0.0),
                ..base()
            },
            SubmitArgs {
                env: vec!["NOEQUALS".into()],
                ..base()
            },
            SubmitArgs {
                labels: vec!["=v".into()],
                ..base()
            },
            SubmitArgs {
                timeout: Some("0s".into()),
                ..base()
            },
            SubmitArgs {
                disk: Some("0".into()),
                ..base()
            },
        ] {
            assert!(submit_body(&a).is_err(), "{a:?}");
        }
    }
}

//! `warden review …`: review jobs (tenant key): a tenant's files plus a
//! command, run in a fresh sandbox; the outputs come back (`docs/api.md`,
//! "Review jobs"). Waiting and following live in `review_wait.rs`,
//! downloading outputs in `review_download.rs`.
//!
//! Exit status of `submit --wait`/`--follow`: 0 succeeded, 1 failed, 124
//! timed out, 130 cancelled (also when waiting is interrupted with Ctrl-C;
//! the job itself goes on); 125 for Warden's own errors.

#[path = "review_download.rs"]
mod download;
#[path = "review_wait.rs"]
mod wait;

use super::http::Api;
use super::output::{self, bytes_field, field, pairs, Table};
use super::{parse, Page, Server, TenantAuth};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// Submit a job: stored files plus a command; prints its id.
    Submit(Box<SubmitArgs>),
    /// Show one job, with its outputs once it ended.
    Status { id: String },
    /// List jobs, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long, value_parser = ["pending", "running", "succeeded", "failed", "cancelled", "timed_out"])]
        status: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Print what the command printed (stdout and stderr, as they came).
    Logs {
        id: String,
        /// Keep printing as the job prints, until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only this stream.
        #[arg(long, value_parser = ["stdout", "stderr"])]
        stream: Option<String>,
    },
    /// List a finished job's outputs, or download them all.
    Outputs {
        id: String,
        /// Download every output into DIR/<path> (made if missing; files
        /// there with the same paths are replaced).
        #[arg(long, value_name = "DIR")]
        download: Option<PathBuf>,
    },
    /// Cancel a job: a pending one at once, a running one is stopped.
    Cancel { id: String },
    /// List the webhook deliveries of a job.
    Webhooks { id: String },
}

#[derive(Args, Debug, Default)]
pub struct SubmitArgs {
    /// A stored file to show read-only at /input/<name> (repeatable).
    #[arg(long = "file", value_name = "FILE_ID")]
    pub files: Vec<String>,
    /// `host` or an image the server knows, e.g. python-data (server
    /// default: host).
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
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
    /// A label (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
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
    if let Some(t) = &a.timeout {
        b.insert(
            "timeout_secs".into(),
            parse::duration_secs("--timeout", t)?.into(),
        );
    }
    if !a.env.is_empty() {
        b.insert("env".into(), json!(parse::env(&a.env)?));
    }
    let mut limits = Map::new();
    if let Some(m) = &a.memory {
        limits.insert("memory_mb".into(), parse::size_mib("--memory", m)?.into());
    }
    if let Some(c) = a.cpus {
        limits.insert("cpus".into(), parse::cpus(c)?.into());
    }
    if let Some(p) = a.pids {
        limits.insert("pids".into(), p.into());
    }
    if let Some(d) = &a.disk {
        limits.insert("disk_mb".into(), parse::size_mib("--disk", d)?.into());
    }
    if !limits.is_empty() {
        b.insert("limits".into(), Value::Object(limits));
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

/// Whether a job in `status` is over (anything but pending/running, so a
/// state newer than this client does not keep `--wait` waiting forever).
pub fn is_terminal(status: &str) -> bool {
    !matches!(status, "pending" | "running")
}

/// This process's exit status for a job that ended in `status`.
pub fn exit_status(status: &str) -> Result<i32> {
    Ok(match status {
        "succeeded" => 0,
        "failed" => 1,
        "timed_out" => 124,
        "cancelled" => 130,
        "pending" | "running" => bail!("the job has not ended (it is {status})"),
        other => bail!("the job ended in a state this client does not know: {other:?}"),
    })
}

pub async fn run(a: ReviewArgs) -> Result<i32> {
    let as_json = a.server.json;
    // Check the flags before needing a key or a server.
    let body = match &a.command {
        ReviewCommand::Submit(s) => Some(submit_body(s)?),
        _ => None,
    };
    let api = Api::tenant(&a.server, &a.auth)?;
    match a.command {
        ReviewCommand::Submit(s) => {
            return submit(&api, &s, body.unwrap_or_default(), as_json).await
        }
        ReviewCommand::Status { id } => {
            let r = get(&api, &id).await?;
            if as_json {
                return output::json(&r).map(|_| 0);
            }
            show(&r)?;
        }
        ReviewCommand::List { status, page } => {
            let mut query = Vec::new();
            if let Some(s) = status {
                query.push(("status", s));
            }
            query.extend(page.query());
            let v = api.get(&["v1", "reviews"], &query).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["ID", "STATUS", "EXIT", "CREATED", "FINISHED", "COMMAND"]);
            for r in output::items(&v)? {
                t.row(vec![
                    field(r, "id"),
                    field(r, "status"),
                    exit_field(r),
                    field(r, "created_at"),
                    field(r, "finished_at"),
                    command_line(r),
                ]);
            }
            t.print()?;
            output::next_page_hint(&v, "--cursor");
        }
        ReviewCommand::Logs { id, follow, stream } => {
            wait::logs(&api, &id, stream.as_deref(), follow, &mut std::io::stdout()).await?;
        }
        ReviewCommand::Outputs { id, download } => {
            let v = api.get(&["v1", "reviews", &id, "outputs"], &[]).await?;
            let items = output::items(&v)?;
            if let Some(dir) = download {
                let saved = download::all(&api, &id, items, &dir, as_json).await?;
                if as_json {
                    return output::json(&v).map(|_| 0);
                }
                let mut text = String::new();
                for p in &saved {
                    text.push_str(&format!("{}\n", p.display()));
                }
                output::out(&text)?;
                let total: u64 = items
                    .iter()
                    .filter_map(|o| o.get("size").and_then(Value::as_u64))
                    .sum();
                super::note(&format!(
                    "{} output{} ({}) in {}",
                    saved.len(),
                    if saved.len() == 1 { "" } else { "s" },
                    output::human_bytes(total),
                    dir.display()
                ));
                if saved.is_empty() {
                    empty_outputs_hint(&api, &id).await;
                }
                return Ok(0);
            }
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            outputs_table(items).print()?;
            if items.is_empty() {
                empty_outputs_hint(&api, &id).await;
            }
        }
        ReviewCommand::Cancel { id } => {
            let r = api.post_empty(&["v1", "reviews", &id, "cancel"]).await?;
            if as_json {
                return output::json(&r).map(|_| 0);
            }
            let status = field(&r, "status");
            let line = match status.as_str() {
                "cancelled" => format!("{id} cancelled"),
                "pending" | "running" => {
                    format!("{id} {status}: cancel requested; it ends as cancelled once stopped")
                }
                _ => format!("{id} already {status}"),
            };
            output::out(&format!("{line}\n"))?;
        }
        ReviewCommand::Webhooks { id } => {
            let v = api.get(&["v1", "reviews", &id, "webhooks"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&[
                "ID",
                "STATUS",
                "ATTEMPTS",
                "CODE",
                "DELIVERED",
                "NEXT",
                "URL",
                "ERROR",
            ]);
            for d in output::items(&v)? {
                t.row(vec![
                    field(d, "id"),
                    field(d, "status"),
                    field(d, "attempts"),
                    field(d, "last_status_code"),
                    field(d, "delivered_at"),
                    field(d, "next_attempt_at"),
                    field(d, "url"),
                    field(d, "last_error"),
                ]);
            }
            t.print()?;
        }
    }
    Ok(0)
}

async fn get(api: &Api, id: &str) -> Result<Value> {
    api.get(&["v1", "reviews", id], &[]).await
}

/// `POST /v1/reviews`, then, with `--wait`/`--follow`, waiting for the end.
async fn submit(api: &Api, a: &SubmitArgs, body: Value, as_json: bool) -> Result<i32> {
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
        super::note(&format!(
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
            super::note(&format!("submitted {id}"));
        } else {
            output::out(&format!("{id}\n"))?;
        }
    }
    let end = match wait::until_end(api, &id, a.follow, as_json).await? {
        Some(end) => end,
        None => {
            super::note(&format!(
                "stopped waiting; {id} goes on (`warden review cancel {id}` stops it)"
            ));
            return Ok(130);
        }
    };
    if as_json {
        output::json(&end)?;
    }
    super::note(&summary(&end, SystemTime::now()));
    exit_status(end.get("status").and_then(Value::as_str).unwrap_or(""))
}

/// One line about how a job ended: id, status, exit, error, duration,
/// outputs.
pub fn summary(r: &Value, now: SystemTime) -> String {
    let mut parts = Vec::new();
    match (
        r.get("exit_code").and_then(Value::as_i64),
        r.get("signal").and_then(Value::as_i64),
    ) {
        (_, Some(s)) => parts.push(format!("signal {s}")),
        (Some(c), None) => parts.push(format!("exit {c}")),
        (None, None) => {}
    }
    if let Some(e) = r
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        parts.push(parse::one_line(e));
    }
    match duration(r, now) {
        Some(d) => parts.push(human_duration(d)),
        None if r.get("started_at").is_none_or(Value::is_null) => {
            parts.push("never started".into())
        }
        None => {}
    }
    let n = r
        .get("outputs")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    parts.push(format!("{n} output{}", if n == 1 { "" } else { "s" }));
    format!(
        "{} {}: {}",
        field(r, "id"),
        field(r, "status"),
        parts.join(", ")
    )
}

/// How long a job ran: `started_at` to `finished_at` (or to `now` while it
/// runs), else the usage's wall time.
fn duration(r: &Value, now: SystemTime) -> Option<Duration> {
    let time = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
    };
    if let Some(start) = time("started_at") {
        let end = time("finished_at").unwrap_or(now);
        return Some(end.duration_since(start).unwrap_or_default());
    }
    r.get("usage")
        .and_then(|u| u.get("wall_seconds"))
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// `4.2s` under a minute, else `1h 2m 3s`.
fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// `exit 3`, `signal 9` or `-`.
fn exit_field(r: &Value) -> String {
    match (
        r.get("exit_code").and_then(Value::as_i64),
        r.get("signal").and_then(Value::as_i64),
    ) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => c.to_string(),
        (None, None) => "-".into(),
    }
}

/// The shell line, or the argv joined by spaces.
fn command_line(r: &Value) -> String {
    if let Some(s) = r.get("shell").and_then(Value::as_str) {
        return parse::one_line(s);
    }
    match r.get("command").and_then(Value::as_array) {
        Some(argv) => parse::one_line(&argv.iter().map(output::show).collect::<Vec<_>>().join(" ")),
        None => "-".into(),
    }
}

fn outputs_table(items: &[Value]) -> Table {
    let mut t = Table::new(&["PATH", "SIZE", "SHA256"]);
    for o in items {
        t.row(vec![
            field(o, "path"),
            bytes_field(o, "size"),
            field(o, "sha256"),
        ]);
    }
    t
}

/// Says why a listing is empty when it is because the job has not ended.
async fn empty_outputs_hint(api: &Api, id: &str) {
    if let Ok(r) = get(api, id).await {
        let status = field(&r, "status");
        if !is_terminal(&status) {
            super::note(&format!(
                "{id} is {status}; its outputs are listed once it ends"
            ));
        }
    }
}

/// One job as `field: value` lines, then its outputs.
fn show(r: &Value) -> Result<()> {
    let (cmd_label, cmd) = if r.get("shell").and_then(Value::as_str).is_some() {
        ("shell", field(r, "shell"))
    } else {
        ("command", field(r, "command"))
    };
    let mut rows = vec![
        ("id", field(r, "id")),
        ("status", field(r, "status")),
        ("image", field(r, "image")),
        (cmd_label, cmd),
        ("files", field(r, "files")),
        ("labels", pairs(r, "labels")),
        ("created", field(r, "created_at")),
        ("started", field(r, "started_at")),
        ("finished", field(r, "finished_at")),
        (
            "duration",
            duration(r, SystemTime::now()).map_or("-".into(), human_duration),
        ),
        ("attempts", field(r, "attempts")),
        ("exit", exit_field(r)),
        ("error", field(r, "error")),
    ];
    if r.get("cancel_requested").and_then(Value::as_bool) == Some(true) {
        rows.push(("cancel", "requested".into()));
    }
    rows.extend([
        ("usage", field(r, "usage")),
        ("webhook", field(r, "webhook_url")),
        ("idempotency", field(r, "idempotency_key")),
    ]);
    let outs = r
        .get("outputs")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let status = field(r, "status");
    rows.push((
        "outputs",
        if !is_terminal(&status) {
            "listed once the job ends".into()
        } else {
            outs.len().to_string()
        },
    ));
    output::fields(&rows)?;
    if !outs.is_empty() {
        output::out(&format!("\n{}", outputs_table(outs).render()))?;
    }
    Ok(())
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
            timeout: Some("10m".into()),
            memory: Some("512M".into()),
            cpus: Some(1.5),
            pids: Some(64),
            disk: Some("1G".into()),
            env: vec!["A=1".into(), "B=x=y".into()],
            labels: vec!["team=ml".into()],
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
                "timeout_secs": 600,
                "env": {"A": "1", "B": "x=y"},
                "limits": {"memory_mb": 512, "cpus": 1.5, "pids": 64, "disk_mb": 1024},
                "labels": {"team": "ml"},
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

    #[test]
    fn end_states_map_to_exit_statuses() {
        assert_eq!(exit_status("succeeded").unwrap(), 0);
        assert_eq!(exit_status("failed").unwrap(), 1);
        assert_eq!(exit_status("timed_out").unwrap(), 124);
        assert_eq!(exit_status("cancelled").unwrap(), 130);
        for s in ["pending", "running", "exploded", ""] {
            assert!(exit_status(s).is_err(), "{s:?}");
        }
        assert!(!is_terminal("pending") && !is_terminal("running"));
        for s in ["succeeded", "failed", "timed_out", "cancelled", "newer"] {
            assert!(is_terminal(s), "{s}");
        }
    }

    #[test]
    fn summaries_fit_on_one_line() {
        let now = SystemTime::now();
        let r = json!({
            "id": "rev_1", "status": "succeeded", "exit_code": 0, "signal": null,
            "error": null, "started_at": "2026-11-23T12:00:00.000Z",
            "finished_at": "2026-11-23T12:00:04.250Z",
            "outputs": [{"path": "a"}, {"path": "manifest.json"}],
        });
        assert_eq!(summary(&r, now), "rev_1 succeeded: exit 0, 4.2s, 2 outputs");
        let r = json!({
            "id": "rev_2", "status": "failed", "exit_code": null, "signal": 9,
            "error": "killed:\nmemory limit", "started_at": "2026-11-23T12:00:00Z",
            "finished_at": "2026-11-23T13:02:03Z", "outputs": [{"path": "x"}],
        });
        assert_eq!(
            summary(&r, now),
            "rev_2 failed: signal 9, killed: memory limit, 1h 2m 3s, 1 output"
        );
        let r = json!({"id": "rev_3", "status": "cancelled", "started_at": null, "outputs": []});
        assert_eq!(
            summary(&r, now),
            "rev_3 cancelled: never started, 0 outputs"
        );
        let r = json!({"id": "rev_4", "status": "timed_out", "exit_code": null,
                       "usage": {"wall_seconds": 30.0}, "outputs": []});
        assert_eq!(summary(&r, now), "rev_4 timed_out: 30.0s, 0 outputs");
    }

    #[test]
    fn commands_show_as_one_line() {
        assert_eq!(
            command_line(&json!({"command": ["ls", "-l"], "shell": null})),
            "ls -l"
        );
        assert_eq!(
            command_line(&json!({"command": null, "shell": "a |\n b"})),
            "a | b"
        );
        assert_eq!(command_line(&json!({})), "-");
        assert_eq!(exit_field(&json!({"exit_code": 3})), "3");
        assert_eq!(
            exit_field(&json!({"exit_code": null, "signal": 15})),
            "signal 15"
        );
        assert_eq!(exit_field(&json!({})), "-");
    }
}

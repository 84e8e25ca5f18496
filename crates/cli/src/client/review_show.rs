//! How review jobs read for people: one job as `field: value` lines, the
//! tables of the listings, and the one-line summary of how a job ended.

use super::is_terminal;
use crate::client::http::Api;
use crate::client::output::{self, bytes_field, field, pairs, Table};
use crate::client::{note, parse};
use anyhow::Result;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// `24ms` under a second, `4.2s` under a minute, else `1h 2m 3s`.
fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// `cpu 1.2s, peak memory 64M, wall 3.0s` (or `-`).
fn usage(r: &Value) -> String {
    let Some(u) = r.get("usage").filter(|u| u.is_object()) else {
        return "-".into();
    };
    let secs = |k: &str| {
        u.get(k)
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| human_duration(Duration::from_secs_f64(s)))
    };
    let mut parts = Vec::new();
    if let Some(c) = secs("cpu_seconds") {
        parts.push(format!("cpu {c}"));
    }
    if let Some(m) = u.get("peak_memory_bytes").and_then(Value::as_u64) {
        parts.push(format!("peak memory {}", output::human_bytes(m)));
    }
    if let Some(w) = secs("wall_seconds") {
        parts.push(format!("wall {w}"));
    }
    if parts.is_empty() {
        return field(r, "usage");
    }
    parts.join(", ")
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

/// The outputs of a job.
pub fn outputs(items: &[Value]) -> Table {
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
pub async fn why_no_outputs(api: &Api, id: &str) {
    if let Ok(r) = api.get(&["v1", "reviews", id], &[]).await {
        let status = field(&r, "status");
        if !is_terminal(&status) {
            note(&format!(
                "{id} is {status}; its outputs are listed once it ends"
            ));
        }
    }
}

/// One job as `field: value` lines, then its outputs.
pub fn review(r: &Value) -> Result<()> {
    let (cmd_label, cmd) = if r.get("shell").and_then(Value::as_str).is_some() {
        ("shell", field(r, "shell"))
    } else {
        ("command", field(r, "command"))
    };
    let mut rows = vec![
        ("id", field(r, "id")),
        ("status", field(r, "status")),
        ("image", field(r, "image")),
        ("isolation", field(r, "isolation")),
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
        ("usage", usage(r)),
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
        output::out(&format!("\n{}", outputs(outs).render()))?;
    }
    Ok(())
}

/// The jobs of a listing.
pub fn reviews(items: &[Value]) -> Table {
    let mut t = Table::new(&["ID", "STATUS", "EXIT", "CREATED", "FINISHED", "COMMAND"]);
    for r in items {
        t.row(vec![
            field(r, "id"),
            field(r, "status"),
            exit_field(r),
            field(r, "created_at"),
            field(r, "finished_at"),
            command_line(r),
        ]);
    }
    t
}

/// The webhook deliveries of a job.
pub fn deliveries(items: &[Value]) -> Table {
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
    for d in items {
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
    t
}

/// What a cancel did, from the job it answered.
pub fn cancelled(id: &str, r: &Value) -> String {
    let status = field(r, "status");
    match status.as_str() {
        "cancelled" => format!("{id} cancelled"),
        "pending" | "running" => {
            format!("{id} {status}: cancel requested; it ends as cancelled once stopped")
        }
        _ => format!("{id} already {status}"),
    }
}

/// Where downloaded outputs went: their paths on stdout, a count on
/// stderr.
pub fn downloaded(saved: &[PathBuf], items: &[Value], dir: &Path) -> Result<()> {
    if saved.is_empty() {
        note("no outputs to download");
        return Ok(());
    }
    let mut text = String::new();
    for p in saved {
        text.push_str(&format!("{}\n", p.display()));
    }
    output::out(&text)?;
    let total: u64 = items
        .iter()
        .filter_map(|o| o.get("size").and_then(Value::as_u64))
        .sum();
    note(&format!(
        "{} output{} ({}) in {}",
        saved.len(),
        if saved.len() == 1 { "" } else { "s" },
        output::human_bytes(total),
        dir.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn cancels_say_what_happened() {
        let r = |s: &str| json!({"status": s});
        assert_eq!(cancelled("rev_1", &r("cancelled")), "rev_1 cancelled");
        assert!(cancelled("rev_1", &r("running")).contains("cancel requested"));
        assert_eq!(
            cancelled("rev_1", &r("succeeded")),
            "rev_1 already succeeded"
        );
    }

    #[test]
    fn durations_and_usage_read_well() {
        assert_eq!(human_duration(Duration::from_millis(24)), "24ms");
        assert_eq!(human_duration(Duration::from_millis(4250)), "4.2s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 2m 3s");
        let r = json!({"usage": {"cpu_seconds": 0.008, "peak_memory_bytes": 1294336,
                                 "wall_seconds": 2.5}});
        assert_eq!(usage(&r), "cpu 8ms, peak memory 1.2M, wall 2.5s");
        assert_eq!(usage(&json!({"usage": null})), "-");
        assert_eq!(usage(&json!({})), "-");
    }
}

//! Sandbox logs: the tenant's audit entries about the sandbox (create,
//! execs, file writes, timeout and network changes, connects, its end),
//! one line each: `<action> <target> <outcome> (key <actor>)`. Warden
//! does not collect a sandbox's own output as logs (exec output goes to
//! whoever ran the command). They stay readable after the sandbox ended.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bResult};
use super::models::{LogEntry, LogLine};
use super::view;
use crate::api::time;
use crate::auth::Caller;
use axum::extract::{Path, RawQuery};
use axum::Json;
use serde::Serialize;
use warden_store::{AuditEntry, AuditQuery};

const MAX_LIMIT: u32 = 1000;
/// Entries scanned at most per request when filters drop most of them.
const MAX_SCAN: usize = 50_000;

const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(1)
}

/// Failures are errors, refusals warnings, everything else information.
fn level(e: &AuditEntry) -> &'static str {
    let ok = e.outcome.starts_with("ok") || e.outcome.starts_with("started");
    if e.action.ends_with(".fail") {
        "error"
    } else if e.action.ends_with(".denied") || e.action == "sandbox.lost" {
        "warn"
    } else if ok || matches!(e.action.as_str(), "sandbox.delete" | "sandbox.timeout") {
        // The end of a sandbox carries its reason as the outcome.
        "info"
    } else {
        "warn"
    }
}

fn line(e: &AuditEntry) -> String {
    format!("{} {} {} (key {})", e.action, e.target, e.outcome, e.actor)
}

fn entry(e: &AuditEntry) -> LogEntry {
    let fields = [
        ("source", "warden-audit".to_string()),
        ("seq", e.seq.to_string()),
        ("action", e.action.clone()),
        ("target", e.target.clone()),
        ("outcome", e.outcome.clone()),
        ("actor", e.actor.clone()),
    ];
    LogEntry {
        timestamp: time(e.at),
        message: line(e),
        level: level(e),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

struct Wanted {
    from_ms: Option<i64>,
    until_ms: Option<i64>,
    backward: bool,
    limit: u32,
    min_level: usize,
    search: Option<String>,
}

impl Wanted {
    /// No filter: the first `MAX_LIMIT` entries, oldest first.
    fn everything() -> Wanted {
        Wanted {
            from_ms: None,
            until_ms: None,
            backward: false,
            limit: MAX_LIMIT,
            min_level: 0,
            search: None,
        }
    }
}

/// Up to `limit` of the sandbox's entries that pass the filters, read in
/// batches until enough are found or none are left.
async fn read(caller: &Caller, sandbox: &str, w: &Wanted) -> E2bResult<Vec<AuditEntry>> {
    let mut q = AuditQuery {
        target: sandbox.to_string(),
        from_ms: w.from_ms,
        until_ms: w.until_ms,
        descending: w.backward,
        limit: MAX_LIMIT,
        ..AuditQuery::default()
    };
    let (mut out, mut scanned) = (Vec::new(), 0);
    while out.len() < w.limit as usize && scanned < MAX_SCAN {
        let batch = caller.store.list_audit_about(&q).await?;
        let Some(last) = batch.last() else { break };
        if w.backward {
            q.before_seq = Some(last.seq);
        } else {
            q.after_seq = Some(last.seq);
        }
        scanned += batch.len();
        out.extend(batch.into_iter().filter(|e| {
            rank(level(e)) >= w.min_level
                && w.search
                    .as_ref()
                    .is_none_or(|s| line(e).to_lowercase().contains(s))
        }));
    }
    out.truncate(w.limit as usize);
    Ok(out)
}

fn parse<T: std::str::FromStr>(k: &str, v: &str) -> E2bResult<T> {
    v.parse()
        .map_err(|_| E2bError::bad_request(format!("{k} {v:?} is not a number")))
}

fn limit(v: &str) -> E2bResult<u32> {
    Ok(parse::<u32>("limit", v)?.min(MAX_LIMIT))
}

#[derive(Serialize)]
pub struct LogsV1 {
    logs: Vec<LogLine>,
    #[serde(rename = "logEntries")]
    log_entries: Vec<LogEntry>,
}

/// `GET /sandboxes/{id}/logs?start=&limit=`: from `start` (Unix ms) on,
/// oldest first.
pub async fn v1(
    E2bCaller(caller): E2bCaller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> E2bResult<Json<LogsV1>> {
    let mut w = Wanted::everything();
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "start" => w.from_ms = Some(parse(&k, &v)?),
            "limit" => w.limit = limit(&v)?,
            other => {
                return Err(E2bError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    let r = view::record(&caller, &id).await?;
    let entries = read(&caller, r.id.as_str(), &w).await?;
    Ok(Json(LogsV1 {
        logs: entries
            .iter()
            .map(|e| LogLine {
                timestamp: time(e.at),
                line: line(e),
            })
            .collect(),
        log_entries: entries.iter().map(entry).collect(),
    }))
}

#[derive(Serialize)]
pub struct LogsV2 {
    logs: Vec<LogEntry>,
}

/// `GET /v2/sandboxes/{id}/logs?cursor=&limit=&direction=&level=&search=`:
/// `cursor` is a time (Unix ms) to read forward from (default: the
/// start) or backward from (newest first; default: now); `level` is the
/// lowest level returned; `search` a case-insensitive substring.
pub async fn v2(
    E2bCaller(caller): E2bCaller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> E2bResult<Json<LogsV2>> {
    let (mut cursor, mut backward) = (None, false);
    let mut w = Wanted::everything();
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "cursor" => cursor = Some(parse::<i64>(&k, &v)?),
            "limit" => w.limit = limit(&v)?,
            "direction" => {
                backward = match &*v {
                    "forward" => false,
                    "backward" => true,
                    _ => return Err(E2bError::bad_request("direction: forward or backward")),
                }
            }
            "level" => {
                w.min_level = LEVELS
                    .iter()
                    .position(|l| *l == v)
                    .ok_or_else(|| E2bError::bad_request("level: debug, info, warn or error"))?
            }
            "search" => w.search = Some(v.to_lowercase()),
            other => {
                return Err(E2bError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    w.backward = backward;
    if backward {
        w.until_ms = cursor;
    } else {
        w.from_ms = cursor;
    }
    let r = view::record(&caller, &id).await?;
    let entries = read(&caller, r.id.as_str(), &w).await?;
    Ok(Json(LogsV2 {
        logs: entries.iter().map(entry).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(action: &str, outcome: &str) -> AuditEntry {
        AuditEntry {
            seq: 1,
            tenant_id: warden_store::TenantId::generate(),
            actor: "k".into(),
            action: action.into(),
            target: "sbx".into(),
            outcome: outcome.into(),
            at: 0,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn levels_follow_outcomes() {
        assert_eq!(level(&e("sandbox.create", "ok")), "info");
        assert_eq!(level(&e("sandbox.exec", "started in background")), "info");
        assert_eq!(level(&e("sandbox.delete", "deleted")), "info");
        assert_eq!(level(&e("sandbox.network_set", "bad_request")), "warn");
        assert_eq!(level(&e("exec.denied", "matches ...")), "warn");
        assert_eq!(level(&e("sandbox.fail", "oom")), "error");
        assert_eq!(entry(&e("a", "ok")).fields["source"], "warden-audit");
    }
}

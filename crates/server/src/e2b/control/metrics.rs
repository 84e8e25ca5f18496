//! Sandbox metrics: one sample, taken now, of a running sandbox's cgroup
//! (Warden keeps no history of them). `memUsed` is the memory charged to
//! the sandbox (page cache included, as its limit counts it), `memCache`
//! that page cache, `memTotal` the limit; `cpuUsedPct` is the CPU time
//! used since the previous sample (or the start) over that wall time and
//! the sandbox's CPUs; `diskUsed` is what its tmpfs file systems
//! (`/output`, `/scratch`, `/tmp`) hold, `diskTotal` their combined size.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bResult};
use super::models::Metric;
use super::view;
use crate::api::time;
use crate::auth::Caller;
use crate::state::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use warden_store::{now_ms, SandboxId, SandboxRecord, SandboxState};

/// At most this many sandboxes in one `GET /sandboxes/metrics`.
const MAX_IDS: usize = 100;

/// A sample of the caller's sandbox `r`, if it runs on this server.
async fn sample(st: &Shared, caller: &Caller, r: &SandboxRecord) -> E2bResult<Option<Metric>> {
    let Some(live) = st.sandboxes.get(caller.store.tenant_id(), &r.id) else {
        return Ok(None);
    };
    let s = live.sample().await?;
    let spec = view::spec(r);
    let cpus = spec.limits.cpus.unwrap_or(1.0);
    let window_ns = s.window.as_nanos() as f64;
    let pct = if window_ns > 0.0 && cpus > 0.0 {
        s.cpu_ns_since as f64 / (window_ns * cpus) * 100.0
    } else {
        0.0
    };
    let now = now_ms();
    Ok(Some(Metric {
        timestamp: time(now),
        timestamp_unix: now / 1000,
        cpu_count: view::cpu_count(&spec),
        cpu_used_pct: (pct * 100.0).round() / 100.0,
        mem_used: s.stats.memory_current_bytes,
        mem_total: r.memory_bytes,
        mem_cache: s.stats.memory_cache_bytes,
        disk_used: s.stats.shmem_bytes,
        disk_total: (spec.limits.disk_mb.unwrap_or(0) << 20) * view::WRITABLE_FILESYSTEMS,
    }))
}

fn unix_secs(k: &str, v: &str) -> E2bResult<i64> {
    v.parse()
        .map_err(|_| E2bError::bad_request(format!("{k} must be a Unix time in seconds")))
}

/// `GET /sandboxes/{id}/metrics?start=&end=` (Unix seconds): the sample,
/// when its time falls in the range; none for a sandbox that has ended.
pub async fn sandbox(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> E2bResult<Json<Vec<Metric>>> {
    let (mut start, mut end) = (None, None);
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "start" => start = Some(unix_secs(&k, &v)?),
            "end" => end = Some(unix_secs(&k, &v)?),
            other => {
                return Err(E2bError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    let r = view::record(&caller, &id).await?;
    if r.state != SandboxState::Running {
        return Ok(Json(Vec::new()));
    }
    let Some(m) = sample(&st, &caller, &r).await? else {
        return Ok(Json(Vec::new()));
    };
    // Seconds are coarse and the caller's clock read came first: a range
    // ending "now" must still hold a sample taken a moment later.
    let in_range = start.is_none_or(|s| s <= m.timestamp_unix)
        && end.is_none_or(|e| m.timestamp_unix <= e + 5);
    Ok(Json(if in_range { vec![m] } else { Vec::new() }))
}

#[derive(Serialize)]
pub struct Many {
    /// Sandbox id -> its sample; ids that are not the caller's running
    /// sandboxes are left out.
    sandboxes: BTreeMap<String, Metric>,
}

/// `GET /sandboxes/metrics?sandbox_ids=a,b`.
pub async fn many(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
) -> E2bResult<Json<Many>> {
    let mut ids = Vec::new();
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "sandbox_ids" => ids.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            other => {
                return Err(E2bError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(E2bError::bad_request(format!(
            "sandbox_ids: 1 to {MAX_IDS} sandbox ids, comma-separated"
        )));
    }
    let mut out = BTreeMap::new();
    for id in ids {
        let Some(sid) = SandboxId::parse(&id) else {
            continue;
        };
        let Some(r) = caller.store.get_sandbox(&sid).await? else {
            continue;
        };
        if r.state != SandboxState::Running {
            continue;
        }
        if let Some(m) = sample(&st, &caller, &r).await? {
            out.insert(id, m);
        }
    }
    Ok(Json(Many { sandboxes: out }))
}

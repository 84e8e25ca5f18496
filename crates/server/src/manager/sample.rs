//! A live sandbox's resource figures, read from its cgroup on demand.

use super::Live;
use crate::service::{Error, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A sandbox's resource figures now ([`Live::sample`]).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub stats: warden_runtime::SandboxStats,
    /// CPU time used since the previous sample (or the start)...
    pub cpu_ns_since: u64,
    /// ...over this much wall time.
    pub window: Duration,
}

impl Live {
    /// Reads the sandbox's usage from its cgroup now; the CPU rate window
    /// runs from the previous sample.
    pub async fn sample(self: &Arc<Self>) -> Result<Sample> {
        let me = self.clone();
        let stats = tokio::task::spawn_blocking(move || {
            let guard = me.sandbox.lock().unwrap_or_else(|e| e.into_inner());
            guard.as_ref().map(|sb| sb.stats())
        })
        .await
        .map_err(|e| Error::internal("reading sandbox usage", e))?
        .ok_or_else(|| Error::conflict("the sandbox is ending"))?
        .map_err(|e| Error::internal("reading sandbox usage", e))?;
        let now = Instant::now();
        let mut mark = self.cpu_mark.lock().unwrap_or_else(|e| e.into_inner());
        let (since, cpu_before) = *mark;
        *mark = (now, stats.cpu_usage_ns);
        Ok(Sample {
            stats,
            cpu_ns_since: stats.cpu_usage_ns.saturating_sub(cpu_before),
            window: now.duration_since(since),
        })
    }
}

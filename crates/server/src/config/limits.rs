//! `[limits]`: the operator's caps on what any one sandbox or review job
//! may ask for or leave behind, whatever its tenant's quotas allow. The
//! defaults are derived from the host.

use anyhow::Result;
use serde::Deserialize;
use std::fmt;

/// Per-sandbox PID limit when the host's `pid_max` allows it: far more than
/// any sandbox needs, far below what would let a few sandboxes take every
/// PID of the host.
const DEFAULT_MAX_PIDS: u64 = 4096;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest `cpus` one sandbox or job may ask for; default: the host's
    /// CPU count.
    pub max_cpus: u32,
    /// Largest `pids` one sandbox or job may ask for; default: 4096, or an
    /// eighth of the host's `pid_max` if that is less.
    pub max_pids: u64,
    /// Bytes of `/output` a review job keeps, by apparent size (a sparse
    /// file counts at its full length, as it would be stored).
    pub max_job_output_bytes: u64,
    /// Files and directories of `/output` a review job keeps.
    pub max_job_output_files: u64,
    /// Bytes of a review job's log (all attempts); later output is dropped.
    pub max_job_log_bytes: u64,
}

fn host_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

fn host_pid_cap() -> u64 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(32_768);
    DEFAULT_MAX_PIDS.min(pid_max / 8).max(8)
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_cpus: host_cpus(),
            max_pids: host_pid_cap(),
            max_job_output_bytes: 256 << 20,
            max_job_output_files: 1000,
            max_job_log_bytes: 64 << 20,
        }
    }
}

impl LimitsConfig {
    /// `WARDEN_LIMITS_*` over the file's values.
    pub(super) fn apply_env(&mut self, num: &impl Fn(&str) -> Result<Option<u64>>) -> Result<()> {
        if let Some(v) = num("WARDEN_LIMITS_MAX_CPUS")? {
            self.max_cpus = v.clamp(1, u32::MAX as u64) as u32;
        }
        if let Some(v) = num("WARDEN_LIMITS_MAX_PIDS")? {
            self.max_pids = v.max(8);
        }
        if let Some(v) = num("WARDEN_LIMITS_MAX_JOB_OUTPUT_BYTES")? {
            self.max_job_output_bytes = v;
        }
        if let Some(v) = num("WARDEN_LIMITS_MAX_JOB_OUTPUT_FILES")? {
            self.max_job_output_files = v;
        }
        if let Some(v) = num("WARDEN_LIMITS_MAX_JOB_LOG_BYTES")? {
            self.max_job_log_bytes = v;
        }
        Ok(())
    }
}

impl fmt::Display for LimitsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[limits]")?;
        writeln!(f, "max_cpus = {}", self.max_cpus)?;
        writeln!(f, "max_pids = {}", self.max_pids)?;
        writeln!(f, "max_job_output_bytes = {}", self.max_job_output_bytes)?;
        writeln!(f, "max_job_output_files = {}", self.max_job_output_files)?;
        writeln!(f, "max_job_log_bytes = {}", self.max_job_log_bytes)
    }
}

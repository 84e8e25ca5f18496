//! `[limits]`: the operator's caps on what any one sandbox or review job
//! may ask for or leave behind, whatever its tenant's quotas allow. The
//! defaults are derived from the host.

use super::knobs::knobs;

/// Per-sandbox PID limit when the host's `pid_max` allows it: far more than
/// any sandbox needs, far below what would let a few sandboxes take every
/// PID of the host.
const DEFAULT_MAX_PIDS: u64 = 4096;

knobs! {
    #[derive(Debug)]
    pub struct LimitsConfig {
        /// Largest `cpus` one sandbox or job may ask for; default: the
        /// host's CPU count.
        pub max_cpus: u32 = host_cpus(), env "WARDEN_LIMITS_MAX_CPUS";
        /// Largest `pids` one sandbox or job may ask for (at least 8);
        /// default: 4096, or an eighth of the host's `pid_max` if that is
        /// less.
        pub max_pids: u64 = host_pid_cap(), env "WARDEN_LIMITS_MAX_PIDS";
        /// Bytes of `/output` a review job keeps, by apparent size (a sparse
        /// file counts at its full length, as it would be stored).
        pub max_job_output_bytes: u64 = 256 << 20, env "WARDEN_LIMITS_MAX_JOB_OUTPUT_BYTES";
        /// Files and directories of `/output` a review job keeps.
        pub max_job_output_files: u64 = 1000, env "WARDEN_LIMITS_MAX_JOB_OUTPUT_FILES";
        /// Bytes of a review job's log (all attempts); later output is
        /// dropped.
        pub max_job_log_bytes: u64 = 64 << 20, env "WARDEN_LIMITS_MAX_JOB_LOG_BYTES";
        /// Largest volume a tenant may create (its size also counts in the
        /// tenant's `max_storage_bytes`, and is taken from this node's
        /// disk when it is made).
        pub max_volume_bytes: u64 = 10 << 30, env "WARDEN_LIMITS_MAX_VOLUME_BYTES";
        /// Most bytes of files one snapshot (or pause) may take from a
        /// sandbox (its blobs also count in the tenant's
        /// `max_storage_bytes`, each content once).
        pub max_snapshot_bytes: u64 = 4 << 30, env "WARDEN_LIMITS_MAX_SNAPSHOT_BYTES";
    }
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

impl LimitsConfig {
    /// At least one CPU and eight PIDs, whatever a source said.
    pub(super) fn normalize(&mut self) {
        self.max_cpus = self.max_cpus.max(1);
        self.max_pids = self.max_pids.max(8);
    }
}

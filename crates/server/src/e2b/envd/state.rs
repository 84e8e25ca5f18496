//! What envd keeps per sandbox beyond what the init knows: how each process
//! was asked for (E2B lists a process with its cmd/args/envs/cwd and tag)
//! and the polling watchers. Dropped with the sandbox's `Live`.

use std::collections::HashMap;
use std::sync::Mutex;
use warden_envd_wire::process::ProcessConfig;

/// Processes remembered per sandbox before exited ones are pruned.
const PRUNE_AT: usize = 1024;

#[derive(Debug, Clone)]
pub struct ProcMeta {
    pub config: ProcessConfig,
    pub tag: Option<String>,
}

#[derive(Default)]
pub struct EnvdState {
    procs: Mutex<HashMap<u32, ProcMeta>>,
    pub watchers: super::watch::Watchers,
}

impl EnvdState {
    fn procs(&self) -> std::sync::MutexGuard<'_, HashMap<u32, ProcMeta>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn remember(&self, pid: u32, meta: ProcMeta) {
        self.procs().insert(pid, meta);
    }

    pub fn meta(&self, pid: u32) -> Option<ProcMeta> {
        self.procs().get(&pid).cloned()
    }

    /// The pids started with `tag` (the caller picks the running one).
    pub fn pids_tagged(&self, tag: &str) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .procs()
            .iter()
            .filter(|(_, m)| m.tag.as_deref() == Some(tag))
            .map(|(p, _)| *p)
            .collect();
        pids.sort_unstable();
        pids
    }

    pub fn needs_pruning(&self) -> bool {
        self.procs().len() >= PRUNE_AT
    }

    /// Forgets every process not in `running`.
    pub fn retain_running(&self, running: &[u32]) {
        self.procs().retain(|p, _| running.contains(p));
    }
}

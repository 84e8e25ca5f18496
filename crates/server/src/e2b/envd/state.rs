//! What envd keeps per sandbox beyond what the init knows: how each process
//! was asked for (E2B lists a process with its cmd/args/envs/cwd and tag)
//! and the polling watchers. Kept here, by sandbox id, not in the core's
//! record of a live sandbox: the core knows nothing of E2B. Forgotten when
//! the sandbox ends (the manager tells [`EnvdSandboxes::forget`]).

use crate::manager::Live;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use warden_envd_wire::process::ProcessConfig;
use warden_store::SandboxId;

/// Processes remembered per sandbox before exited ones are pruned.
const PRUNE_AT: usize = 1024;

#[derive(Debug, Clone)]
pub struct ProcMeta {
    pub config: ProcessConfig,
    pub tag: Option<String>,
    /// Started on a terminal: its output is told as `pty` data.
    pub pty: bool,
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

/// Every live sandbox's [`EnvdState`], made on its first envd request.
#[derive(Default)]
pub struct EnvdSandboxes {
    map: Mutex<HashMap<SandboxId, Arc<EnvdState>>>,
}

impl EnvdSandboxes {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, Arc<EnvdState>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `live`'s state. A sandbox that has ended meanwhile gets a state of
    /// its own that is not kept (its requests fail at the init anyway), so
    /// nothing is left here after [`Self::forget`]: the manager marks a
    /// sandbox ended before it calls `forget`, and this looks after it has
    /// taken its entry.
    pub fn of(&self, live: &Live) -> Arc<EnvdState> {
        let state = self.map().entry(live.id.clone()).or_default().clone();
        if live.end_reason().is_some() {
            self.forget(&live.id);
        }
        state
    }

    /// Drops what was kept for `id` (its watchers stop and give back their
    /// charges).
    pub fn forget(&self, id: &SandboxId) {
        let gone = self.map().remove(id);
        drop(gone);
    }

    /// Sandboxes with state kept.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

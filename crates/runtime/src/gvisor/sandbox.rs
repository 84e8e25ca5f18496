//! One gVisor sandbox once started: its control channel, its `runsc run`
//! child, and its teardown (kill the container, wait for runsc, remove
//! whatever is left: runsc state, bundle, cgroup).

use super::runsc::{self, Runsc};
use super::{state_err, Begun, Parts, STOP_DEADLINE};
use crate::{RuntimeError, Sandbox, SandboxStats};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use warden_cgroups::Manager;

pub struct GvisorSandbox {
    id: String,
    control: Option<UnixStream>,
    /// `runsc run`, alive as long as the container.
    child: Option<Child>,
    egress: Option<std::net::TcpListener>,
    runsc: Runsc,
    bundle: PathBuf,
    cgroups: Manager,
    done: bool,
}

impl GvisorSandbox {
    pub(super) fn from_begun(parts: &Arc<Parts>, b: Begun) -> GvisorSandbox {
        GvisorSandbox {
            id: b.id,
            control: Some(b.control),
            child: Some(b.child),
            egress: b.egress,
            runsc: parts.runsc.clone(),
            bundle: b.dir,
            cgroups: parts.cgroups.clone(),
            done: false,
        }
    }

    fn cgroup_stats(&self) -> Result<SandboxStats, RuntimeError> {
        match self.cgroups.open(&self.id)? {
            Some(cg) => Ok(cg.stats()?.into()),
            None => Ok(SandboxStats::default()),
        }
    }

    /// runsc names its state files after the container; any left means the
    /// container was not cleaned up by `runsc run` itself.
    fn runsc_state_left(&self) -> bool {
        std::fs::read_dir(&self.runsc.root)
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(&self.id))
            })
            .unwrap_or(true)
    }

    fn teardown(&mut self) -> Result<SandboxStats, RuntimeError> {
        if self.done {
            return Ok(SandboxStats::default());
        }
        self.done = true;
        self.control.take();
        let stats = self.cgroup_stats().unwrap_or_default();
        if let Some(mut child) = self.child.take() {
            if !matches!(child.try_wait(), Ok(Some(_)))
                && !runsc::kill_sandbox_process(&self.bundle, &child)
            {
                let _ = self.runsc.kill(&self.id);
            }
            runsc::wait_or_kill(&mut child, STOP_DEADLINE);
        }
        if self.runsc_state_left() {
            let _ = self.runsc.kill(&self.id);
            self.runsc.delete(&self.id)?;
        }
        std::fs::remove_dir_all(&self.bundle).map_err(state_err(&self.bundle))?;
        if let Some(cg) = self.cgroups.open(&self.id)? {
            cg.destroy()?;
        }
        Ok(stats)
    }
}

impl Sandbox for GvisorSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn take_control(&mut self) -> Option<UnixStream> {
        self.control.take()
    }

    fn take_egress_listener(&mut self) -> Option<std::net::TcpListener> {
        self.egress.take()
    }

    fn stats(&self) -> Result<SandboxStats, RuntimeError> {
        self.cgroup_stats()
    }

    fn kill(&self) {
        let killed = self
            .child
            .as_ref()
            .is_some_and(|c| runsc::kill_sandbox_process(&self.bundle, c));
        if !killed {
            let _ = self.runsc.kill(&self.id);
        }
    }

    fn checkpoint(&mut self, image: &std::path::Path) -> Result<(), RuntimeError> {
        self.runsc
            .checkpoint(&self.id, image)
            .map_err(RuntimeError::from)?;
        // The container ended with the checkpoint: `runsc run` exits.
        if let Some(mut child) = self.child.take() {
            runsc::wait_or_kill(&mut child, STOP_DEADLINE);
        }
        Ok(())
    }

    fn destroy(mut self: Box<Self>) -> Result<SandboxStats, RuntimeError> {
        self.teardown()
    }
}

impl Drop for GvisorSandbox {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

//! Pre-started gVisor sandboxes (`warden serve`).
//!
//! A gVisor start is ~120 ms of runsc process starts and Sentry boot, none
//! of which depends on what the sandbox is for. So the runtime keeps a few
//! sandboxes booted, each with its init waiting on its control channel for
//! its configuration, and hands one out when a start asks for the shape it
//! was made with; the configuration (the commands' environment, secrets
//! included, and the working directory) then goes over the control channel
//! exactly as for a sandbox started on the spot. What the Sentry enforces
//! is fixed when the bundle is written, so only a start whose bundle would
//! be the same is served from the pool: same image, limits, user and
//! hostname, no `/input`, no extra mounts, no network. Anything else
//! starts on the spot and becomes the shape the pool makes from then on.
//!
//! Before a booted sandbox joins the pool its init warms it up (runs a few
//! of the image's programs, then ends every process: `warm_up.rs` in the
//! init), so the tenant's first command finds the Sentry's caches and the
//! platform's stub process ready: ~7 ms off the first exec on this host.
//!
//! The pool fills only once a gVisor sandbox has been asked for (a server
//! that never runs one pays nothing), refills on a background thread after
//! each hand-out, and is torn down with the runtime: every waiting sandbox
//! is killed and removed like any other.

use super::{Begun, GvisorSandbox, Parts};
use crate::native::filler::{Filler, Next, PoolState, Shared};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_spec::SandboxSpec;

/// Sandboxes `warden serve` keeps booted by default.
pub const POOL_SIZE: usize = 2;

/// How long the filler waits after failing to pre-start a sandbox.
const RETRY: Duration = Duration::from_secs(2);

/// How long a sandbox just handed out has the CPUs to itself before the
/// filler boots its replacement (unless the pool has run dry): a boot is
/// ~100 ms of CPU, and the new sandbox's first commands come first.
const SETTLE: Duration = Duration::from_millis(150);

/// The part of a spec a pre-started sandbox was made from, or `None` if a
/// sandbox for `spec` cannot come from the pool. What goes over the
/// control channel at hand-out (environment, working directory) and what
/// the runtime never sees (the timeout) are left out.
pub fn shape(spec: &SandboxSpec) -> Option<SandboxSpec> {
    if spec.input_dir.is_some() || !spec.mounts.is_empty() || spec.network.rules().is_some() {
        return None;
    }
    let mut shape = spec.clone();
    shape.env.clear();
    shape.workdir = SandboxSpec::default().workdir;
    shape.limits.timeout = None;
    Some(shape)
}

/// A sandbox booted ahead of time, its init waiting for its configuration.
pub struct Waiting {
    pub begun: Begun,
}

struct State {
    ready: VecDeque<Waiting>,
    /// What the ready ones were made from; `None` until a gVisor sandbox
    /// of a shape the pool can make is first asked for.
    shape: Option<SandboxSpec>,
    /// Made from a shape nobody asks for any more, to remove.
    stale: Vec<Waiting>,
    /// When one was last handed out.
    taken: Option<Instant>,
    closed: bool,
}

impl PoolState for State {
    fn closed(&self) -> bool {
        self.closed
    }
    fn ready(&self) -> usize {
        self.ready.len()
    }
    fn taken(&self) -> Option<Instant> {
        self.taken
    }
}

pub struct Pool {
    filler: Filler<State>,
    parts: Arc<Parts>,
}

impl Pool {
    /// Starts the thread that keeps `size` sandboxes booted (none for 0).
    pub fn start(size: usize, parts: Arc<Parts>) -> Pool {
        let state = State {
            ready: VecDeque::new(),
            shape: None,
            stale: Vec::new(),
            taken: None,
            closed: false,
        };
        let for_fill = parts.clone();
        let filler = Filler::start("warden-gvisor-pool", state, size > 0, move |s| {
            fill(s, size, &for_fill)
        });
        Pool { filler, parts }
    }

    /// A sandbox booted from `spec`'s shape, if one is ready. Otherwise
    /// the caller starts its own, and the pool makes this shape from now
    /// on (when it can make it at all).
    pub fn take(&self, spec: &SandboxSpec) -> Option<Waiting> {
        let wanted = shape(spec)?;
        let mut st = self.filler.shared.lock();
        let taken = if st.shape.as_ref() == Some(&wanted) {
            st.taken = Some(Instant::now());
            st.ready.pop_front()
        } else {
            st.shape = Some(wanted);
            let old = std::mem::take(&mut st.ready);
            st.stale.extend(old);
            None
        };
        drop(st);
        self.filler.shared.wake();
        taken
    }

    /// How many sandboxes are booted and waiting.
    pub fn ready(&self) -> usize {
        self.filler.shared.lock().ready.len()
    }

    /// Ids of the sandboxes booted and waiting (they belong to no one yet).
    pub fn ready_ids(&self) -> Vec<String> {
        let st = self.filler.shared.lock();
        st.ready.iter().map(|w| w.begun.id.clone()).collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.filler.stop(|st| st.closed = true);
        let mut st = self.filler.shared.lock();
        let (ready, stale) = (std::mem::take(&mut st.ready), std::mem::take(&mut st.stale));
        drop(st);
        for w in ready.into_iter().chain(stale) {
            discard(&self.parts, w);
        }
    }
}

/// Kills a waiting sandbox and removes everything it had.
fn discard(parts: &Arc<Parts>, w: Waiting) {
    drop(GvisorSandbox::from_begun(parts, w.begun));
}

fn fill(shared: &Shared<State>, size: usize, parts: &Arc<Parts>) {
    loop {
        let (stale, shape) = {
            let mut st = shared.wait_until(shared.lock(), |st| {
                st.closed || !st.stale.is_empty() || (st.shape.is_some() && st.ready.len() < size)
            });
            if st.closed {
                return;
            }
            (std::mem::take(&mut st.stale), st.shape.clone())
        };
        for w in stale {
            discard(parts, w);
        }
        let Some(shape) = shape else { continue };
        match shared.after_settling(SETTLE, size) {
            Next::Stop => return,
            Next::Full => continue,
            Next::Make => {}
        }
        let begun =
            parts
                .begin(&shape)
                .and_then(|begun| match begun.warm_up(|| shared.lock().closed) {
                    Ok(()) => Ok(begun),
                    Err(why) => {
                        discard(parts, Waiting { begun });
                        Err(super::GvisorError::Start(why).into())
                    }
                });
        match begun {
            Ok(begun) => {
                let mut st = shared.lock();
                let w = Waiting { begun };
                if st.closed || st.shape.as_ref() != Some(&shape) {
                    // Closed, or the shape changed while it booted.
                    drop(st);
                    discard(parts, w);
                } else {
                    tracing::info!(
                        "gVisor sandbox {} warmed up, waiting in the pool",
                        w.begun.id
                    );
                    st.ready.push_back(w);
                }
            }
            Err(e) => {
                tracing::warn!("pre-starting a gVisor sandbox: {e}");
                let st = shared.wait_for(shared.lock(), RETRY, |st| st.closed);
                if st.closed {
                    return;
                }
            }
        }
    }
}

//! Sandboxes' first steps taken ahead of time, so a start need not wait
//! for them: a slot, a fresh cgroup with the sandbox's limits, and an init
//! cloned by the zygote into new namespaces, with its id maps written and
//! in its group, blocked until it is sent its set-up.
//!
//! Those steps cost ~0.35 ms of a start (the clone with five namespaces,
//! the memory controller setting up a group, a dozen writes to cgroup and
//! proc files) and none of them depends on the sandbox's spec but its cgroup
//! limits. A background thread keeps a few ready, made with the limits the
//! last sandbox asked for; a start whose limits match takes one and only
//! sends it its set-up (image, mounts, input, user, environment, ...). A
//! start with other limits takes the steps itself as before, and tells the
//! thread to use those limits from then on (a server gives most sandboxes
//! the same limits).
//!
//! Each one is used once. Its group is fresh and holds nothing but its own
//! init, which has run nothing but the zygote's clone; should Warden die,
//! the init sees its set-up pipe close and exits, the slot locks go with
//! Warden, and the next start reaps the groups like any other leftover.

use super::filler::{Filler, Next, PoolState, Shared};
use super::netns::NetnsPool;
use super::slots::{Slot, Slots};
use super::spawn::{self, Pending};
use super::zygote::Zygote;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_cgroups::{Cgroup, Limits, Manager};

/// Sandboxes kept ready by default: enough for a short burst of starts.
pub const POOL_SIZE: usize = 2;

/// A sandbox's first steps: see the module documentation.
pub struct Prestarted {
    pub slot: Slot,
    pub cgroup: Cgroup,
    pub init: Pending,
}

/// A slot taken and its cgroup made, nothing launched into them yet (a
/// one-shot runtime makes them while its zygote starts). Dropped unused,
/// the group is removed and the slot freed.
pub struct Reserved {
    /// Both `Some` until [`Prestarted::launch`] takes them.
    slot: Option<Slot>,
    cgroup: Option<Cgroup>,
    limits: Limits,
}

impl Reserved {
    /// The lowest free slot, cleared of whatever a crashed holder left,
    /// and a fresh group with `limits`.
    pub fn take(
        slots: &Slots,
        cgroups: &Manager,
        limits: &Limits,
    ) -> Result<Reserved, crate::RuntimeError> {
        let slot = slots.acquire()?;
        let name = slot.cgroup_name();
        if let Some(stale) = cgroups.open(&name)? {
            stale.destroy()?;
        }
        let cgroup = cgroups.create(&name, limits)?;
        Ok(Reserved {
            slot: Some(slot),
            cgroup: Some(cgroup),
            limits: *limits,
        })
    }

    /// Whether a sandbox with `limits` can use it.
    pub fn fits(&self, limits: &Limits) -> bool {
        self.limits == *limits
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
    }
}

impl Prestarted {
    /// Takes the first steps in the lowest free slot (removing whatever a
    /// crashed holder of that slot left).
    pub fn make(
        parts: &Parts,
        netns: Option<std::os::fd::OwnedFd>,
        limits: &Limits,
    ) -> Result<Prestarted, crate::RuntimeError> {
        let reserved = Reserved::take(&parts.slots, &parts.cgroups, limits)?;
        Prestarted::launch(parts, netns, reserved)
    }

    /// Clones an init into the slot and group of `reserved`.
    pub fn launch(
        parts: &Parts,
        netns: Option<std::os::fd::OwnedFd>,
        mut reserved: Reserved,
    ) -> Result<Prestarted, crate::RuntimeError> {
        let (Some(slot), Some(cgroup)) = (reserved.slot.take(), reserved.cgroup.take()) else {
            return Err(crate::RuntimeError::Init(
                "a reserved slot was already used".into(),
            ));
        };
        match spawn::launch(&parts.zygote, netns, slot.host_base(), &cgroup) {
            Ok(init) => Ok(Prestarted { slot, cgroup, init }),
            Err(e) => {
                let _ = cgroup.destroy();
                Err(e.into())
            }
        }
    }

    /// Kills the waiting init and removes its group, then frees the slot.
    fn discard(self) {
        let Prestarted { slot, cgroup, init } = self;
        drop(init);
        if let Err(e) = cgroup.remove_emptied() {
            tracing::warn!("removing an unused sandbox's cgroup: {e}");
        }
        drop(slot);
    }
}

/// What taking the first steps needs, shared with the pool's thread.
pub struct Parts {
    pub zygote: Arc<Zygote>,
    pub netns: Arc<NetnsPool>,
    pub slots: Arc<Slots>,
    pub cgroups: Manager,
}

struct State {
    ready: VecDeque<Prestarted>,
    /// What the ready ones were made with, and what the next ones get.
    limits: Limits,
    /// Made with limits nobody asks for any more, to discard.
    stale: Vec<Prestarted>,
    /// When one was last handed out (its set-up is under way).
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

pub struct PrestartPool(Filler<State>);

impl PrestartPool {
    /// Starts the thread that keeps `size` sandboxes' first steps taken
    /// with `limits` (`size` 0: no pool, every start takes its own).
    pub fn start(size: usize, parts: Arc<Parts>, limits: Limits) -> PrestartPool {
        let state = State {
            ready: VecDeque::new(),
            limits,
            stale: Vec::new(),
            taken: None,
            closed: false,
        };
        PrestartPool(Filler::start(
            "warden-prestart",
            state,
            size > 0,
            move |s| fill(s, size, &parts),
        ))
    }

    /// Names of the ready ones' cgroups (for accounting: they belong to no
    /// sandbox yet).
    pub fn ready(&self) -> Vec<String> {
        let st = self.0.shared.lock();
        st.ready
            .iter()
            .map(|p| p.cgroup.name().to_string())
            .collect()
    }

    /// Ready first steps made with `limits`, if there are any. Otherwise
    /// the caller takes its own, and later ones get `limits`.
    pub fn take(&self, limits: &Limits) -> Option<Prestarted> {
        let mut st = self.0.shared.lock();
        let taken = if st.limits == *limits {
            st.taken = Some(Instant::now());
            st.ready.pop_front()
        } else {
            st.limits = *limits;
            let old = std::mem::take(&mut st.ready);
            st.stale.extend(old);
            None
        };
        drop(st);
        self.0.shared.wake();
        taken
    }
}

impl Drop for PrestartPool {
    fn drop(&mut self) {
        self.0.stop(|st| st.closed = true);
        let mut st = self.0.shared.lock();
        let (ready, stale) = (std::mem::take(&mut st.ready), std::mem::take(&mut st.stale));
        drop(st);
        ready.into_iter().chain(stale).for_each(Prestarted::discard);
    }
}

/// How long the filler waits after failing to pre-start a sandbox.
const RETRY: Duration = Duration::from_secs(1);
/// About how long a sandbox's set-up takes (see the README's "Speed").
const SETTLE: Duration = Duration::from_millis(1);

/// The filler thread: discards stale ones and tops the pool up, until
/// closed. After an error it waits a moment and tries again.
fn fill(shared: &Shared<State>, size: usize, parts: &Parts) {
    loop {
        let (stale, limits) = {
            let mut st = shared.wait_until(shared.lock(), |st| {
                st.closed || !st.stale.is_empty() || st.ready.len() < size
            });
            if st.closed {
                return;
            }
            (std::mem::take(&mut st.stale), st.limits)
        };
        stale.into_iter().for_each(Prestarted::discard);
        match shared.after_settling(SETTLE, size) {
            Next::Stop => return,
            Next::Full => continue,
            Next::Make => {}
        }
        match Prestarted::make(parts, parts.netns.take(), &limits) {
            Ok(made) => {
                let mut st = shared.lock();
                if st.limits == limits {
                    st.ready.push_back(made);
                } else {
                    st.stale.push(made);
                }
            }
            Err(e) => {
                // E.g. the host out of pids or memory for a moment: starts
                // take every step themselves meanwhile.
                tracing::warn!("pre-starting a sandbox: {e} (retrying in {RETRY:?})");
                let st = shared.wait_for(shared.lock(), RETRY, |st| st.closed);
                if st.closed {
                    return;
                }
            }
        }
    }
}

//! Cgroups made ahead of time, so a sandbox's start need not make its own.
//!
//! Making a sandbox's group is a directory in each v1 hierarchy (memory,
//! pids, cpu, cpuacct) plus a write per limit: ~0.1 ms, most of it the
//! memory controller setting up a new group. A background thread keeps a few
//! ready, each with a slot of its own (its uid range and name, see
//! `slots.rs`) and the limits the last sandbox asked for; a start whose
//! limits match takes one as it is. A start with other limits makes its own
//! group as before, and tells the thread to make groups with those limits
//! from then on (a server gives most sandboxes the same limits).
//!
//! A pooled group is a fresh, empty group that nobody has joined: nothing
//! of an earlier sandbox (charged memory, CPU time, OOM kills) is in it.
//! Each is used once. Should Warden die, the slot locks go with it and the
//! next start reaps the groups like any other leftover.

use super::filler::{Filler, Shared};
use super::slots::{Slot, Slots};
use std::collections::VecDeque;
use std::sync::Arc;
use warden_cgroups::{Cgroup, Limits, Manager};

/// Groups kept ready by default: enough for a short burst of starts.
pub const POOL_SIZE: usize = 2;

struct State {
    ready: VecDeque<(Slot, Cgroup)>,
    /// What the ready groups were made with, and what the next ones get.
    limits: Limits,
    /// Groups made with limits nobody asks for any more, to remove.
    stale: Vec<(Slot, Cgroup)>,
    closed: bool,
}

pub struct CgroupPool(Filler<State>);

impl CgroupPool {
    /// Starts the thread that keeps `size` groups with `limits` ready
    /// (`size` 0: no pool, every start makes its own group).
    pub fn start(size: usize, slots: Arc<Slots>, cgroups: Manager, limits: Limits) -> CgroupPool {
        let state = State {
            ready: VecDeque::new(),
            limits,
            stale: Vec::new(),
            closed: false,
        };
        CgroupPool(Filler::start("warden-cgroups", state, size > 0, move |s| {
            fill(s, size, &slots, &cgroups)
        }))
    }

    /// Names of the groups ready now (for accounting: they are the
    /// runtime's, not any sandbox's).
    pub fn ready(&self) -> Vec<String> {
        let st = self.0.shared.lock();
        st.ready
            .iter()
            .map(|(_, cg)| cg.name().to_string())
            .collect()
    }

    /// A ready group (and its slot) made with `limits`, if there is one.
    /// Otherwise the caller makes its own, and later groups get `limits`.
    pub fn take(&self, limits: &Limits) -> Option<(Slot, Cgroup)> {
        let mut st = self.0.shared.lock();
        let taken = if st.limits == *limits {
            st.ready.pop_front()
        } else {
            st.limits = *limits;
            let old: Vec<_> = st.ready.drain(..).collect();
            st.stale.extend(old);
            None
        };
        drop(st);
        self.0.shared.wake();
        taken
    }
}

impl Drop for CgroupPool {
    fn drop(&mut self) {
        self.0.stop(|st| st.closed = true);
        let mut st = self.0.shared.lock();
        let mut unused: Vec<_> = st.ready.drain(..).collect();
        unused.append(&mut st.stale);
        drop(st);
        remove(unused);
    }
}

/// Removes unused groups, then releases their slots.
fn remove(groups: Vec<(Slot, Cgroup)>) {
    for (slot, cg) in groups {
        if let Err(e) = cg.remove_emptied() {
            tracing::warn!("removing an unused pooled cgroup: {e}");
        }
        drop(slot);
    }
}

/// The filler thread: removes stale groups and tops the pool up, until
/// closed. On an error it stops (and every start makes its own group).
fn fill(shared: &Shared<State>, size: usize, slots: &Slots, cgroups: &Manager) {
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
        remove(stale);
        if shared.lock().ready.len() >= size {
            continue;
        }
        match make(slots, cgroups, &limits) {
            Ok(made) => {
                let mut st = shared.lock();
                if st.limits == limits {
                    st.ready.push_back(made);
                } else {
                    st.stale.push(made);
                }
            }
            Err(e) => {
                tracing::warn!("cgroup pool stopped: {e}");
                return;
            }
        }
    }
}

/// A fresh group with `limits` in the lowest free slot (removing whatever
/// a crashed holder of that slot left).
pub fn make(
    slots: &Slots,
    cgroups: &Manager,
    limits: &Limits,
) -> Result<(Slot, Cgroup), crate::RuntimeError> {
    let slot = slots.acquire()?;
    let name = slot.cgroup_name();
    if let Some(stale) = cgroups.open(&name)? {
        stale.destroy()?;
    }
    let cg = cgroups.create(&name, limits)?;
    Ok((slot, cg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_ready(pool: &CgroupPool, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ready = pool.ready();
            if ready.len() >= n || Instant::now() > deadline {
                return ready;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the test's groups and parent however the test ends.
    struct Cleanup(Manager);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for name in self.0.list().unwrap_or_default() {
                if let Ok(Some(cg)) = self.0.open(&name) {
                    let _ = cg.destroy();
                }
            }
            let _ = self.0.clone().remove_parent();
        }
    }

    #[test]
    fn groups_are_fresh_used_once_and_follow_the_limits_asked_for() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let parent = format!("warden-unit-pool-{}", std::process::id());
        let state = tempfile::tempdir().unwrap();
        let slots = Arc::new(Slots::open(state.path()).unwrap());
        let cgroups = Manager::detect(&parent).unwrap().without_freezer();
        let _cleanup = Cleanup(cgroups.clone());
        let first = Limits {
            pids_max: Some(50),
            ..Default::default()
        };
        let pool = CgroupPool::start(2, slots.clone(), cgroups.clone(), first);
        assert_eq!(wait_ready(&pool, 2).len(), 2);
        let (slot_a, a) = pool.take(&first).expect("a ready group");
        let (slot_b, b) = pool.take(&first).expect("a second one");
        assert_ne!(slot_a.index(), slot_b.index());
        assert_eq!(a.name(), slot_a.cgroup_name());
        // Fresh: nothing ever ran in it, and it has the limits asked for.
        for cg in [&a, &b] {
            assert!(cg.pids().unwrap().is_empty());
            let stats = cg.lifetime_stats().unwrap();
            assert_eq!(stats.cpu_usage_ns.unwrap_or(0), 0, "{stats:?}");
        }
        let max = |cg: &Cgroup| {
            cg.paths()
                .iter()
                .map(|p| p.join("pids.max"))
                .find(|p| p.exists())
                .map(|p| std::fs::read_to_string(p).unwrap().trim().to_string())
        };
        assert_eq!(max(&a).as_deref(), Some("50"));
        // Other limits: nothing ready for them yet; the pool switches over.
        let second = Limits {
            pids_max: Some(70),
            ..Default::default()
        };
        assert!(pool.take(&second).is_none());
        wait_ready(&pool, 2);
        let (_slot_c, c) = pool.take(&second).expect("a group with the new limits");
        assert_eq!(max(&c).as_deref(), Some("70"));
        for cg in [a, b, c] {
            cg.remove_emptied().unwrap();
        }
        // Dropping the pool removes the groups it still holds.
        drop(pool);
        assert!(cgroups.list().unwrap().is_empty(), "{:?}", cgroups.list());
    }
}

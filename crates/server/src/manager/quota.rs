//! What a running sandbox or review job takes of its tenant's quotas, and
//! the check of one more against them.
//!
//! Memory, CPUs and PIDs are totals over everything the tenant runs on the
//! node, review jobs included (a job is a sandbox like any other to the
//! host). `max_sandboxes` counts interactive sandboxes only: jobs are
//! bounded by the queue's per-tenant concurrency instead, so a tenant's
//! open sandboxes cannot keep its jobs from ever starting.

use super::Manager;
use crate::service::{Error, Result};
use warden_spec::SandboxSpec;
use warden_store::{Quotas, TenantId, TenantStore};

/// One sandbox's limits, as its tenant's quotas count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub memory: u64,
    pub millicpus: u64,
    pub pids: u64,
}

impl Footprint {
    /// The limits `spec` asks for (the API always sets all three).
    pub fn of(spec: &SandboxSpec) -> Footprint {
        Footprint {
            memory: spec.limits.memory_bytes.unwrap_or(0),
            millicpus: spec.limits.cpu_millicores.unwrap_or(0),
            pids: spec.limits.pids.unwrap_or(0),
        }
    }

    fn add(&mut self, o: Footprint) {
        self.memory = self.memory.saturating_add(o.memory);
        self.millicpus = self.millicpus.saturating_add(o.millicpus);
        self.pids = self.pids.saturating_add(o.pids);
    }

    fn sub(&mut self, o: Footprint) {
        self.memory = self.memory.saturating_sub(o.memory);
        self.millicpus = self.millicpus.saturating_sub(o.millicpus);
        self.pids = self.pids.saturating_sub(o.pids);
    }
}

/// A tenant's running (or starting) work: interactive sandboxes holding a
/// slot, and the footprint of everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub slots: u32,
    pub used: Footprint,
}

impl Totals {
    pub fn add(&mut self, fp: Footprint, takes_slot: bool) {
        self.slots += u32::from(takes_slot);
        self.used.add(fp);
    }

    pub fn sub(&mut self, fp: Footprint, takes_slot: bool) {
        self.slots = self.slots.saturating_sub(u32::from(takes_slot));
        self.used.sub(fp);
    }

    pub fn is_empty(&self) -> bool {
        *self == Totals::default()
    }
}

/// Refuses (429, naming the quota) one more sandbox of footprint `asked`
/// next to `now`.
pub fn check(q: &Quotas, now: Totals, asked: Footprint, takes_slot: bool) -> Result<()> {
    if takes_slot && now.slots >= q.max_sandboxes {
        return Err(Error::Quota(format!(
            "max_sandboxes: {} of {} sandboxes are running or starting",
            now.slots, q.max_sandboxes
        )));
    }
    let used = now.used;
    if used.memory.saturating_add(asked.memory) > q.max_memory_bytes {
        return Err(Error::Quota(format!(
            "max_memory_bytes: {} bytes in use, {} more asked, limit {}",
            used.memory, asked.memory, q.max_memory_bytes
        )));
    }
    let max_millicpus = u64::from(q.max_cpus) * 1000;
    if used.millicpus.saturating_add(asked.millicpus) > max_millicpus {
        return Err(Error::Quota(format!(
            "max_cpus: {} CPUs in use, {} more asked, limit {}",
            cpus(used.millicpus),
            cpus(asked.millicpus),
            q.max_cpus
        )));
    }
    if used.pids.saturating_add(asked.pids) > q.max_pids {
        return Err(Error::Quota(format!(
            "max_pids: {} PIDs in use, {} more asked, limit {}",
            used.pids, asked.pids, q.max_pids
        )));
    }
    Ok(())
}

/// Refuses what could never run, even with nothing else running (a review
/// job, checked when it is submitted rather than left to wait forever).
pub fn check_alone(q: &Quotas, asked: Footprint) -> Result<()> {
    check(q, Totals::default(), asked, false)
}

/// Releases an admission when the create finishes, whichever way.
pub(super) struct Admission<'a> {
    manager: &'a Manager,
    tenant: TenantId,
    footprint: Footprint,
    takes_slot: bool,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut map = self
            .manager
            .admitting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&self.tenant) {
            e.sub(self.footprint, self.takes_slot);
            if e.is_empty() {
                map.remove(&self.tenant);
            }
        }
    }
}

impl Manager {
    /// The tenant's running and starting work on this node. Read under the
    /// `admitting` lock (held by the caller), and a sandbox leaves
    /// `admitting` only after it entered the live map, so none is missed.
    fn totals(
        &self,
        admitting: &std::collections::HashMap<TenantId, Totals>,
        tenant: &TenantId,
    ) -> Totals {
        let mut now = admitting.get(tenant).copied().unwrap_or_default();
        for l in self.map().values().filter(|l| &l.tenant == tenant) {
            now.add(l.footprint, l.takes_slot);
        }
        now
    }

    /// Checks the tenant's quotas against its work on this node and
    /// reserves room for one more.
    pub(super) fn admit(
        &self,
        tenant: &TenantId,
        q: Quotas,
        footprint: Footprint,
        takes_slot: bool,
    ) -> Result<Admission<'_>> {
        let mut admitting = self.admitting.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.totals(&admitting, tenant);
        check(&q, now, footprint, takes_slot)?;
        admitting
            .entry(tenant.clone())
            .or_default()
            .add(footprint, takes_slot);
        Ok(Admission {
            manager: self,
            tenant: tenant.clone(),
            footprint,
            takes_slot,
        })
    }

    /// Whether one more of `footprint` fits the tenant's quotas now,
    /// without reserving it (a review job asks before it does any other
    /// work, and waits in the queue while it does not).
    pub async fn room_for(&self, store: &TenantStore, footprint: Footprint) -> Result<()> {
        let tenant = store
            .tenant()
            .await?
            .ok_or_else(|| Error::not_found("tenant"))?;
        let admitting = self.admitting.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.totals(&admitting, store.tenant_id());
        check(&tenant.quotas, now, footprint, false)
    }
}

fn cpus(millicpus: u64) -> String {
    format!("{}", millicpus as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_total_is_checked_and_named() {
        let q = Quotas {
            max_sandboxes: 2,
            max_memory_bytes: 1000,
            max_cpus: 2,
            max_pids: 100,
            ..Quotas::default()
        };
        let fp = |memory, millicpus, pids| Footprint {
            memory,
            millicpus,
            pids,
        };
        let mut now = Totals::default();
        now.add(fp(600, 1500, 60), false);
        assert!(check(&q, now, fp(400, 500, 40), true).is_ok());
        for (asked, quota) in [
            (fp(401, 0, 0), "max_memory_bytes"),
            (fp(0, 501, 0), "max_cpus"),
            (fp(0, 0, 41), "max_pids"),
        ] {
            let e = check(&q, now, asked, false).unwrap_err();
            let Error::Quota(m) = e else {
                panic!("{e:?}");
            };
            assert!(m.starts_with(quota), "{m}");
        }
        now.add(fp(0, 0, 0), true);
        now.add(fp(0, 0, 0), true);
        assert!(check(&q, now, fp(0, 0, 0), true).is_err());
        // A job takes no slot.
        assert!(check(&q, now, fp(0, 0, 0), false).is_ok());
        now.sub(fp(600, 1500, 60), false);
        assert_eq!(now.used, Footprint::default());
        assert!(check_alone(&q, fp(1001, 0, 0)).is_err());
    }
}

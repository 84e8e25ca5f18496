//! How much memory polling watchers' queues may take: bytes of queued
//! events per watcher, per sandbox (its watchers together) and per tenant
//! (all its sandboxes' watchers together). An event enters a queue only if
//! all three have room; otherwise the watcher's own oldest events make
//! room (and its next poll reports the loss, naming the limit), so one
//! watcher never takes another's events away.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use warden_store::TenantId;

/// Bytes in use against a limit.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Each tenant's budget, shared by its sandboxes' watchers while any holds
/// it.
#[derive(Default)]
pub struct TenantBudgets {
    map: Mutex<HashMap<TenantId, Weak<Budget>>>,
}

impl TenantBudgets {
    pub fn get(&self, tenant: &TenantId, limit: usize) -> Arc<Budget> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get(tenant).and_then(Weak::upgrade) {
            return b;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let b = Budget::new(limit);
        map.insert(tenant.clone(), Arc::downgrade(&b));
        b
    }
}

/// Which limit left no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(usize),
    Watcher(usize),
    Sandbox(usize),
    Tenant(usize),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "a watcher keeps at most {n} events"),
            Limit::Watcher(n) => write!(
                f,
                "a watcher keeps at most {n} bytes of events ([server] watcher_bytes)"
            ),
            Limit::Sandbox(n) => write!(
                f,
                "this sandbox's watchers keep at most {n} bytes of events together \
                 ([server] watcher_sandbox_bytes)"
            ),
            Limit::Tenant(n) => write!(
                f,
                "this tenant's watchers keep at most {n} bytes of events together \
                 ([server] watcher_tenant_bytes)"
            ),
        }
    }
}

/// What one watcher's queue draws on.
pub struct Charges {
    watcher: Arc<Budget>,
    sandbox: Arc<Budget>,
    tenant: Arc<Budget>,
}

impl Charges {
    pub fn new(watcher: usize, sandbox: Arc<Budget>, tenant: Arc<Budget>) -> Charges {
        Charges {
            watcher: Budget::new(watcher),
            sandbox,
            tenant,
        }
    }

    /// Takes `n` bytes from all three budgets, or from none.
    pub fn take(&self, n: usize) -> Result<(), Limit> {
        if !self.watcher.try_take(n) {
            return Err(Limit::Watcher(self.watcher.limit));
        }
        if !self.sandbox.try_take(n) {
            self.watcher.give(n);
            return Err(Limit::Sandbox(self.sandbox.limit));
        }
        if !self.tenant.try_take(n) {
            self.sandbox.give(n);
            self.watcher.give(n);
            return Err(Limit::Tenant(self.tenant.limit));
        }
        Ok(())
    }

    pub fn give(&self, n: usize) {
        self.watcher.give(n);
        self.sandbox.give(n);
        self.tenant.give(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_takes_from_all_three_or_none() {
        let tenant = Budget::new(250);
        let sandbox = Budget::new(150);
        let a = Charges::new(100, sandbox.clone(), tenant.clone());
        let b = Charges::new(100, sandbox.clone(), tenant.clone());
        assert_eq!(a.take(60), Ok(()));
        assert_eq!(a.take(60), Err(Limit::Watcher(100)));
        assert_eq!(b.take(60), Ok(()));
        assert_eq!(b.take(35), Err(Limit::Sandbox(150)));
        // Nothing was kept of the refused charges.
        assert_eq!((sandbox.used(), tenant.used()), (120, 120));
        let other = Charges::new(200, Budget::new(200), tenant.clone());
        assert_eq!(other.take(140), Err(Limit::Tenant(250)));
        assert_eq!(other.take(130), Ok(()));
        a.give(60);
        assert_eq!((sandbox.used(), tenant.used()), (60, 190));
    }
}

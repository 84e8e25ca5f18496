//! Bytes of the server's own memory that tenants' requests may take: a
//! limit, what is in use against it, one such budget per tenant, and the
//! server's total that every tenant's buffers draw on. Used by E2B
//! watchers' queues (`e2b/envd/watch_budget.rs`), the output JSON-mode
//! execs buffer (`routes/exec_budget.rs`), connections to sandbox ports
//! (`service/ports.rs`) and resumed sandboxes' bases (`snapshots/base.rs`).

use std::collections::HashMap;
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

    /// Takes `n` bytes if that stays within the limit.
    pub fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.limit)
            })
            .is_ok()
    }

    /// Takes as much of `n` bytes as is left, and says how much that was.
    pub fn take_up_to(&self, n: usize) -> usize {
        match self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_add(n.min(self.limit.saturating_sub(u))))
            }) {
            Ok(u) | Err(u) => n.min(self.limit.saturating_sub(u)),
        }
    }

    /// Gives `n` bytes back.
    pub fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `n` bytes for as long as the returned hold lives.
    pub fn hold(self: &Arc<Budget>, n: usize) -> Option<Held> {
        self.try_take(n).then(|| Held {
            budget: self.clone(),
            n,
        })
    }
}

/// Bytes taken from a budget, given back when dropped.
#[derive(Debug)]
pub struct Held {
    budget: Arc<Budget>,
    n: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.n);
    }
}

/// Each tenant's budget of one kind, shared by whatever holds it.
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

/// What tenants' requests buffer in the server: the server's total (the
/// bound on the memory tenants can drive) and each tenant's shares of it,
/// one kind of buffer each.
pub struct Buffers {
    pub total: Arc<Budget>,
    /// JSON-mode exec output, per tenant.
    pub exec: TenantBudgets,
    /// Unpolled E2B watchers' events, per tenant.
    pub watch: TenantBudgets,
    /// Open connections to sandbox ports, per tenant.
    pub ports: TenantBudgets,
    /// What resumed sandboxes' restored files are remembered by, per
    /// tenant (`snapshots/base.rs`).
    pub bases: TenantBudgets,
}

impl Buffers {
    pub fn new(total: usize) -> Buffers {
        Buffers {
            total: Budget::new(total),
            exec: TenantBudgets::default(),
            watch: TenantBudgets::default(),
            ports: TenantBudgets::default(),
            bases: TenantBudgets::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_up_to_takes_what_is_left() {
        let b = Budget::new(100);
        assert_eq!(b.take_up_to(60), 60);
        assert_eq!(b.take_up_to(60), 40);
        assert_eq!(b.take_up_to(1), 0);
        assert_eq!(b.used(), 100);
        b.give(30);
        assert_eq!(b.take_up_to(10), 10);
        assert_eq!(b.used(), 80);
    }
}

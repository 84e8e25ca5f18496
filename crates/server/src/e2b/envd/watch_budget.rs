//! How much memory polling watchers' queues may take: bytes of queued
//! events per watcher, per sandbox (its watchers together) and per tenant
//! (all its sandboxes' watchers together), and from the server's total for
//! every tenant's buffers. An event enters a queue only if
//! all four have room; otherwise the watcher's own oldest events make
//! room (and its next poll reports the loss, naming the limit), so one
//! watcher never takes another's events away.

pub use crate::budget::Budget;
use std::fmt;
use std::sync::Arc;

/// Which limit left no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(usize),
    Watcher(usize),
    Sandbox(usize),
    Tenant(usize),
    Server(usize),
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
            Limit::Server(n) => write!(
                f,
                "this server buffers at most {n} bytes for all tenants together \
                 ([server] buffers_total_bytes)"
            ),
        }
    }
}

/// What one watcher's queue draws on.
pub struct Charges {
    watcher: Arc<Budget>,
    sandbox: Arc<Budget>,
    tenant: Arc<Budget>,
    server: Arc<Budget>,
}

impl Charges {
    pub fn new(
        watcher: usize,
        sandbox: Arc<Budget>,
        tenant: Arc<Budget>,
        server: Arc<Budget>,
    ) -> Charges {
        Charges {
            watcher: Budget::new(watcher),
            sandbox,
            tenant,
            server,
        }
    }

    /// Takes `n` bytes from all four budgets, or from none.
    pub fn take(&self, n: usize) -> Result<(), Limit> {
        if !self.watcher.try_take(n) {
            return Err(Limit::Watcher(self.watcher.limit()));
        }
        if !self.sandbox.try_take(n) {
            self.watcher.give(n);
            return Err(Limit::Sandbox(self.sandbox.limit()));
        }
        if !self.tenant.try_take(n) {
            self.sandbox.give(n);
            self.watcher.give(n);
            return Err(Limit::Tenant(self.tenant.limit()));
        }
        if !self.server.try_take(n) {
            self.tenant.give(n);
            self.sandbox.give(n);
            self.watcher.give(n);
            return Err(Limit::Server(self.server.limit()));
        }
        Ok(())
    }

    pub fn give(&self, n: usize) {
        self.watcher.give(n);
        self.sandbox.give(n);
        self.tenant.give(n);
        self.server.give(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_takes_from_all_four_or_none() {
        let tenant = Budget::new(250);
        let sandbox = Budget::new(150);
        let server = Budget::new(1000);
        let a = Charges::new(100, sandbox.clone(), tenant.clone(), server.clone());
        let b = Charges::new(100, sandbox.clone(), tenant.clone(), server.clone());
        assert_eq!(a.take(60), Ok(()));
        assert_eq!(a.take(60), Err(Limit::Watcher(100)));
        assert_eq!(b.take(60), Ok(()));
        assert_eq!(b.take(35), Err(Limit::Sandbox(150)));
        // Nothing was kept of the refused charges.
        assert_eq!((sandbox.used(), tenant.used()), (120, 120));
        let other = Charges::new(200, Budget::new(200), tenant.clone(), server.clone());
        assert_eq!(other.take(140), Err(Limit::Tenant(250)));
        assert_eq!(other.take(130), Ok(()));
        a.give(60);
        assert_eq!((sandbox.used(), tenant.used()), (60, 190));
        assert_eq!(server.used(), 190);
        // The server's total binds every tenant's watchers together.
        let small = Budget::new(200);
        let c = Charges::new(100, Budget::new(100), Budget::new(100), small.clone());
        let d = Charges::new(100, Budget::new(100), Budget::new(100), small.clone());
        assert_eq!(c.take(100), Ok(()));
        assert_eq!(d.take(100), Ok(()));
        let e = Charges::new(100, Budget::new(100), Budget::new(100), small.clone());
        assert_eq!(e.take(1), Err(Limit::Server(200)));
        c.give(100);
        assert_eq!(e.take(1), Ok(()));
    }
}

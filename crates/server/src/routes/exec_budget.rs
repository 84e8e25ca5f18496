//! What JSON-mode execs may buffer of the server's memory. Each keeps up to
//! `exec_output_bytes` per stream until the command ends, so it reserves
//! twice that up front, from its tenant's budget (`exec_output_tenant_bytes`:
//! past it, 429 naming the limit) and from the server's
//! (`exec_output_total_bytes`: past it, 503 capacity), and holds the
//! reservation until its answer is made. Reserving the whole amount first
//! means no request ever waits for another's bytes, and no tenant can take
//! more than its own share of the server's.

use crate::budget::{Budget, Held, TenantBudgets};
use crate::error::ApiError;
use axum::http::StatusCode;
use std::sync::Arc;
use warden_store::TenantId;

pub struct ExecBudgets {
    total: Arc<Budget>,
    tenants: TenantBudgets,
}

/// A JSON-mode exec's reservation, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _tenant: Held,
    _total: Held,
    /// Keeps the tenant's budget alive (and shared) while held.
    _budget: Arc<Budget>,
}

impl ExecBudgets {
    pub fn new(total: usize) -> ExecBudgets {
        ExecBudgets {
            total: Budget::new(total),
            tenants: TenantBudgets::default(),
        }
    }

    /// Reserves what a JSON-mode exec keeping `per_stream` bytes of each
    /// stream may buffer, for `tenant`, whose own budget is `tenant_limit`.
    pub fn reserve(
        &self,
        tenant: &TenantId,
        tenant_limit: usize,
        per_stream: usize,
    ) -> Result<Reservation, ApiError> {
        let n = per_stream.saturating_mul(2);
        let budget = self.tenants.get(tenant, tenant_limit);
        let Some(tenant_held) = budget.hold(n) else {
            return Err(ApiError::quota(format!(
                "this tenant's JSON-mode execs in flight already buffer up to {} of {} bytes \
                 ([server] exec_output_tenant_bytes; each reserves {n}); wait for one to end, \
                 or ask for `Accept: text/event-stream`, which buffers nothing",
                budget.used(),
                budget.limit()
            )));
        };
        let Some(total_held) = self.total.hold(n) else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "capacity",
                format!(
                    "this server is at capacity: JSON-mode execs in flight buffer up to {} of {} \
                     bytes ([server] exec_output_total_bytes); try again later, or ask for \
                     `Accept: text/event-stream`, which buffers nothing",
                    self.total.used(),
                    self.total.limit()
                ),
            ));
        };
        Ok(Reservation {
            _tenant: tenant_held,
            _total: total_held,
            _budget: budget,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_takes_its_share_and_the_server_its_total() {
        let b = ExecBudgets::new(500);
        let (t1, t2) = (TenantId::generate(), TenantId::generate());
        let a1 = b.reserve(&t1, 200, 50).expect("first");
        let a2 = b.reserve(&t1, 200, 50).expect("second");
        let e = b.reserve(&t1, 200, 50).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        // Another tenant is not held up by the first one's share.
        let _b1 = b.reserve(&t2, 200, 50).expect("other tenant");
        drop(a1);
        let _a3 = b.reserve(&t1, 200, 50).expect("room again");
        // The server's total: 500 bytes, five reservations.
        let _b2 = b.reserve(&t2, 200, 50).expect("t2 second");
        let _t3 = b.reserve(&TenantId::generate(), 200, 50).expect("t3");
        let t4 = TenantId::generate();
        let e = b.reserve(&t4, 200, 50).unwrap_err();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, "capacity");
        drop(a2);
        b.reserve(&t4, 200, 50).expect("room once one ends");
    }
}

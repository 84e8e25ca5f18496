//! What a JSON-mode exec may buffer of the server's memory. Its output is
//! kept until the command ends and the answer is sent, so every byte it
//! keeps is charged, as it arrives, to its tenant's share
//! (`[server] exec_output_tenant_bytes`) and to the server's total for all
//! tenants' buffers (`buffers_total_bytes`). When either has no room left,
//! the output is cut there and the answer names the limit; the command
//! itself runs on. Nothing is charged for what is not kept, so small
//! outputs never contend: only tenants that print a lot at once share the
//! room. The charge is given back when the answer has been handed over.

use crate::budget::{Budget, Buffers};
use std::sync::Arc;
use warden_store::TenantId;

/// The limit that cut an exec's output short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// `exec_output_bytes`: the per-stream cap of one exec.
    Stream,
    /// `exec_output_tenant_bytes`: the tenant's execs together.
    Tenant,
    /// `buffers_total_bytes`: every tenant's buffers together.
    Server,
}

impl Cut {
    /// The configuration key of the limit, as answers name it.
    pub fn key(self) -> &'static str {
        match self {
            Cut::Stream => "exec_output_bytes",
            Cut::Tenant => "exec_output_tenant_bytes",
            Cut::Server => "buffers_total_bytes",
        }
    }
}

/// Memory one kept byte costs until the answer is sent: the byte itself,
/// plus its form in the JSON answer (an escape for quotes, backslashes and
/// control bytes; up to a 3-byte replacement character for a byte of
/// invalid UTF-8, which may also be copied once when the text is made).
pub fn cost(b: u8) -> usize {
    match b {
        b'"' | b'\\' => 3,
        0..=0x1f => 7,
        0x80.. => 6,
        _ => 2,
    }
}

/// One exec's charge against its tenant's share and the server's total,
/// given back when dropped.
#[derive(Debug)]
pub struct ExecCharge {
    tenant: Arc<Budget>,
    total: Arc<Budget>,
    taken: usize,
}

impl ExecCharge {
    pub fn new(buffers: &Buffers, tenant: &TenantId, tenant_limit: usize) -> ExecCharge {
        ExecCharge {
            tenant: buffers.exec.get(tenant, tenant_limit),
            total: buffers.total.clone(),
            taken: 0,
        }
    }

    /// Charges the longest prefix of `d` that both budgets have room for;
    /// answers its length and, when that is not all of `d`, which limit
    /// cut it.
    pub fn take(&mut self, d: &[u8]) -> (usize, Option<Cut>) {
        let want: usize = d.iter().map(|&b| cost(b)).sum();
        let from_tenant = self.tenant.take_up_to(want);
        let granted = self.total.take_up_to(from_tenant);
        self.tenant.give(from_tenant - granted);
        // The bytes the grant pays for, whole bytes only.
        let (mut kept, mut spent) = (0, 0);
        for &b in d {
            if spent + cost(b) > granted {
                break;
            }
            spent += cost(b);
            kept += 1;
        }
        self.tenant.give(granted - spent);
        self.total.give(granted - spent);
        self.taken += spent;
        let cut = (kept < d.len()).then_some(if from_tenant < want {
            Cut::Tenant
        } else {
            Cut::Server
        });
        (kept, cut)
    }
}

impl Drop for ExecCharge {
    fn drop(&mut self) {
        self.tenant.give(self.taken);
        self.total.give(self.taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_charged_as_kept_and_cut_at_the_first_full_budget() {
        let buffers = Buffers::new(100);
        let (t1, t2) = (TenantId::generate(), TenantId::generate());
        let mut a = ExecCharge::new(&buffers, &t1, 60);
        // Plain text costs two bytes a byte.
        assert_eq!(a.take(b"hello"), (5, None));
        let mut b = ExecCharge::new(&buffers, &t1, 60);
        // The tenant's share (60) has 50 left: 25 bytes fit.
        assert_eq!(b.take(&[b'x'; 40]), (25, Some(Cut::Tenant)));
        // Another tenant draws on the server's total: 40 left of 100.
        let mut c = ExecCharge::new(&buffers, &t2, 60);
        assert_eq!(c.take(&[b'y'; 30]), (20, Some(Cut::Server)));
        assert_eq!(buffers.total.used(), 100);
        // A control byte costs 7: one fits in the 10 the server has left.
        drop(a);
        assert_eq!(c.take(b"\n\n"), (1, Some(Cut::Server)));
        drop((b, c));
        // Every charge went back with its exec.
        assert_eq!(buffers.total.used(), 0);
        assert_eq!(buffers.exec.get(&t1, 60).used(), 0);
    }
}

//! The audit chain: each tenant's entries form a hash chain, so an entry
//! altered, removed or inserted after the fact (e.g. by someone with write
//! access to the database file) shows up as a break when the chain is
//! verified.
//!
//! `hash = sha256(encoding(prev_hash, tenant, seq, actor, action, target,
//! outcome, at))`, lower-case hex. The encoding is unambiguous: a version tag,
//! then every string prefixed with its length and every integer as 8
//! big-endian bytes, so no two different entries encode to the same bytes
//! (plain concatenation would make `("ab", "c")` and `("a", "bc")` collide).

use crate::{AuditEntry, Millis, TenantId};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Changing the encoding means changing this tag (old chains keep theirs).
const DOMAIN: &str = "warden-audit-v1";

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

/// The hash of one entry, chained to its predecessor's hash.
#[allow(clippy::too_many_arguments)] // the fields of one entry, in order
pub fn entry_hash(
    prev_hash: &str,
    tenant: &TenantId,
    seq: i64,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    at: Millis,
) -> String {
    let mut h = Sha256::new();
    put_str(&mut h, DOMAIN);
    put_str(&mut h, prev_hash);
    put_str(&mut h, tenant.as_str());
    h.update(seq.to_be_bytes());
    put_str(&mut h, actor);
    put_str(&mut h, action);
    put_str(&mut h, target);
    put_str(&mut h, outcome);
    h.update(at.to_be_bytes());
    hex::encode(h.finalize())
}

/// Where and why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct AuditBreak {
    pub seq: i64,
    pub reason: String,
}

/// Verifies a chain entry by entry, so a long chain can be checked one page
/// at a time without holding all of it.
#[derive(Debug, Clone)]
pub struct Verifier {
    tenant: Option<TenantId>,
    next_seq: i64,
    prev_hash: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    /// A verifier expecting the first entry of a chain (seq 1).
    pub fn new() -> Verifier {
        Verifier {
            tenant: None,
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
        }
    }

    /// Checks the next entry: its seq follows without a gap, it names the
    /// previous entry's hash, and its own hash recomputes.
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), AuditBreak> {
        let fail = |reason: String| AuditBreak { seq: e.seq, reason };
        if e.seq != self.next_seq {
            return Err(AuditBreak {
                seq: self.next_seq,
                reason: format!("expected seq {}, found seq {}", self.next_seq, e.seq),
            });
        }
        match &self.tenant {
            Some(t) if *t != e.tenant_id => {
                return Err(fail(format!(
                    "entry of tenant {} in the chain of tenant {t}",
                    e.tenant_id
                )));
            }
            Some(_) => {}
            None => self.tenant = Some(e.tenant_id.clone()),
        }
        if e.prev_hash != self.prev_hash {
            return Err(fail(
                "prev_hash does not match the previous entry's hash".into(),
            ));
        }
        let expected = entry_hash(
            &e.prev_hash,
            &e.tenant_id,
            e.seq,
            &e.actor,
            &e.action,
            &e.target,
            &e.outcome,
            e.at,
        );
        if e.hash != expected {
            return Err(fail(
                "hash does not match the entry's contents (altered)".into(),
            ));
        }
        self.next_seq += 1;
        self.prev_hash = e.hash.clone();
        Ok(())
    }

    /// How many entries have verified so far.
    pub fn verified(&self) -> i64 {
        self.next_seq - 1
    }
}

/// Verifies a whole chain, from seq 1.
pub fn verify(entries: &[AuditEntry]) -> Result<(), AuditBreak> {
    let mut v = Verifier::new();
    entries.iter().try_for_each(|e| v.push(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let tenant = TenantId::generate();
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let hash = entry_hash(&prev, &tenant, seq, "admin", "act", "tgt", "ok", seq);
                AuditEntry {
                    seq,
                    tenant_id: tenant.clone(),
                    actor: "admin".into(),
                    action: "act".into(),
                    target: "tgt".into(),
                    outcome: "ok".into(),
                    at: seq,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    #[test]
    fn genesis_is_64_zeros() {
        assert_eq!(GENESIS.len(), 64);
        assert!(GENESIS.bytes().all(|b| b == b'0'));
    }

    #[test]
    fn encoding_is_unambiguous() {
        let t = TenantId::generate();
        let a = entry_hash(GENESIS, &t, 1, "ab", "c", "", "ok", 0);
        let b = entry_hash(GENESIS, &t, 1, "a", "bc", "", "ok", 0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(()));
        assert_eq!(verify(&[]), Ok(()));
    }

    #[test]
    fn breaks_are_located() {
        let mut c = chain(5);
        c[2].outcome = "denied".into();
        assert_eq!(verify(&c).map_err(|b| b.seq), Err(3));

        let mut c = chain(5);
        c.remove(1);
        let err = verify(&c).unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(
            err.to_string().contains("audit chain broken at seq 2"),
            "{err}"
        );

        let mut c = chain(5);
        c[3].prev_hash = GENESIS.into();
        assert_eq!(verify(&c).map_err(|b| b.seq), Err(4));

        let mut c = chain(3);
        c[1].tenant_id = TenantId::generate();
        assert_eq!(verify(&c).map_err(|b| b.seq), Err(2));
    }
}

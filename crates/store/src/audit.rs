//! The audit chain: each tenant's entries form a hash chain, so an entry
//! altered, removed or inserted after the fact (e.g. by someone with write
//! access to the database file) shows up as a break when the chain is
//! verified.
//!
//! A plain hash chain only catches careless edits: whoever can write the
//! database can also recompute every hash after a change, or cut the newest
//! entries off, or delete a whole chain. So entries are keyed and chains
//! anchored:
//! - keyed: `hash = HMAC-SHA256(key, encoding(...))` under the server's
//!   audit key ([`AuditKey`], a file beside the database, never in it), so
//!   a changed entry cannot be given a matching hash without the key;
//! - anchored: after every append the server writes the chain's head
//!   (`seq`, `hash`), signed with the same key, to the object store
//!   ([`crate::anchor`]), apart from the rows, so cutting entries off the
//!   end or deleting the chain leaves an anchor that vouches for more than
//!   is there.
//!
//! Entries written before chains were keyed (`warden-audit-v1`: a plain
//! sha256) stay verifiable as they are; the first server start with a key
//! anchors each such chain's head, after which they are covered by the
//! anchor like keyed ones. A chain goes from unkeyed to keyed once: an
//! unkeyed entry after a keyed one is a break (a rewrite that dropped the
//! key).
//!
//! The encoding is unambiguous: a version tag, then every string prefixed
//! with its length and every integer as 8 big-endian bytes, so no two
//! different entries encode to the same bytes (plain concatenation would
//! make `("ab", "c")` and `("a", "bc")` collide).

use crate::anchor::Anchor;
pub use crate::audit_key::{AuditKey, KeyError};
use crate::{AuditEntry, Millis, TenantId};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Changing the encoding means changing these tags (old chains keep theirs).
const DOMAIN: &str = "warden-audit-v1";
const DOMAIN_KEYED: &str = "warden-audit-v2";

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

#[allow(clippy::too_many_arguments)] // the fields of one entry, in order
fn encode(
    domain: &str,
    prev_hash: &str,
    tenant: &TenantId,
    seq: i64,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    at: Millis,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(160 + actor.len() + action.len() + target.len() + outcome.len());
    put_str(&mut b, domain);
    put_str(&mut b, prev_hash);
    put_str(&mut b, tenant.as_str());
    b.extend_from_slice(&seq.to_be_bytes());
    put_str(&mut b, actor);
    put_str(&mut b, action);
    put_str(&mut b, target);
    put_str(&mut b, outcome);
    b.extend_from_slice(&at.to_be_bytes());
    b
}

/// The unkeyed hash of one entry (`warden-audit-v1`), chained to its
/// predecessor's hash: what entries written before chains were keyed hold.
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
    let b = encode(
        DOMAIN, prev_hash, tenant, seq, actor, action, target, outcome, at,
    );
    hex::encode(Sha256::digest(&b))
}

/// The keyed hash of one entry (`warden-audit-v2`).
#[allow(clippy::too_many_arguments)] // the fields of one entry, in order
pub fn entry_mac(
    key: &AuditKey,
    prev_hash: &str,
    tenant: &TenantId,
    seq: i64,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    at: Millis,
) -> String {
    key.mac(&encode(
        DOMAIN_KEYED,
        prev_hash,
        tenant,
        seq,
        actor,
        action,
        target,
        outcome,
        at,
    ))
}

/// Where and why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {reason}")]
pub struct AuditBreak {
    pub seq: i64,
    pub reason: String,
}

/// Verifies a chain entry by entry, so a long chain can be checked one page
/// at a time without holding all of it; [`finish`](Verifier::finish) then
/// checks the chain against its anchor.
#[derive(Debug, Clone)]
pub struct Verifier {
    tenant: Option<TenantId>,
    next_seq: i64,
    prev_hash: String,
    key: Option<AuditKey>,
    /// A keyed entry was seen: every later one must be keyed too.
    keyed: bool,
    /// Unkeyed entries were seen (only an anchor vouches for them).
    unkeyed: bool,
    anchor: Option<Anchor>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    /// A verifier without the key, expecting the first entry of a chain
    /// (seq 1): it can check only unkeyed entries.
    pub fn new() -> Verifier {
        Verifier {
            tenant: None,
            next_seq: 1,
            prev_hash: GENESIS.to_owned(),
            key: None,
            keyed: false,
            unkeyed: false,
            anchor: None,
        }
    }

    /// A verifier holding the server's audit key and the chain's anchor, if
    /// there is one (its signature already checked, see
    /// [`crate::anchor::Anchors::read`]).
    pub fn keyed(key: &AuditKey, anchor: Option<Anchor>) -> Verifier {
        Verifier {
            key: Some(key.clone()),
            anchor,
            ..Verifier::new()
        }
    }

    /// Checks the next entry: its seq follows without a gap, it names the
    /// previous entry's hash, its own hash recomputes, and where the anchor
    /// names its seq, the anchor's hash is its hash.
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
        let keyed = self.key.as_ref().is_some_and(|k| {
            e.hash
                == entry_mac(
                    k,
                    &e.prev_hash,
                    &e.tenant_id,
                    e.seq,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.outcome,
                    e.at,
                )
        });
        if keyed {
            self.keyed = true;
        } else {
            let unkeyed = e.hash
                == entry_hash(
                    &e.prev_hash,
                    &e.tenant_id,
                    e.seq,
                    &e.actor,
                    &e.action,
                    &e.target,
                    &e.outcome,
                    e.at,
                );
            if !unkeyed {
                return Err(fail(
                    "hash does not match the entry's contents (altered)".into(),
                ));
            }
            if self.keyed {
                return Err(fail(
                    "an unkeyed entry after keyed ones (rewritten without the key)".into(),
                ));
            }
            self.unkeyed = true;
        }
        if let Some(a) = &self.anchor {
            if a.seq == e.seq && a.hash != e.hash {
                return Err(fail(
                    "the entry differs from the one its anchor vouches for (rewritten)".into(),
                ));
            }
        }
        self.next_seq += 1;
        self.prev_hash = e.hash.clone();
        Ok(())
    }

    /// How many entries have verified so far.
    pub fn verified(&self) -> i64 {
        self.next_seq - 1
    }

    /// After the last entry: the chain reaches at least as far as its
    /// anchor (else entries were cut off, or the whole chain deleted), and
    /// unkeyed entries are vouched for by an anchor (anyone can compute
    /// those). Only checked by a keyed verifier.
    pub fn finish(&self) -> Result<(), AuditBreak> {
        if self.key.is_none() {
            return Ok(());
        }
        let end = self.verified();
        match &self.anchor {
            Some(a) if a.seq > end => Err(AuditBreak {
                seq: end + 1,
                reason: if end == 0 {
                    format!(
                        "the chain is gone, but its anchor vouches for {} entries (deleted)",
                        a.seq
                    )
                } else {
                    format!(
                        "the chain ends at seq {end}, but its anchor vouches for {} entries (truncated)",
                        a.seq
                    )
                },
            }),
            None if self.unkeyed => Err(AuditBreak {
                seq: 1,
                reason: "unkeyed entries without an anchor vouching for them".into(),
            }),
            _ => Ok(()),
        }
    }
}

/// Verifies a whole unkeyed chain, from seq 1.
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

//! Audit anchors: each tenant's chain head (`seq`, `hash`), signed with the
//! audit key and kept in the object store under `audit/<tenant>/head`,
//! apart from the rows it vouches for (see [`crate::audit`]).
//!
//! The server rewrites a tenant's anchor after every append, under a lock
//! per tenant, so an anchor is never older than the last append that
//! answered. What verification makes of it: entries cut off the end leave
//! an anchor that vouches for more than the chain holds; a deleted chain
//! leaves an anchor and no entries; a rewritten entry at or before the
//! anchor changes the hash the anchor names.

use crate::audit_key::AuditKey;
use crate::objects::Objects;
use crate::{now_ms, Millis, Result, StoreError, TenantId};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const DOMAIN: &str = "warden-audit-anchor-v1";
/// Written once the first server with a key has anchored the chains that
/// were there before keys (see [`Anchors::adopt_unkeyed`]).
pub(crate) const ADOPTED: &str = "audit/adopted";

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub tenant: String,
    pub seq: i64,
    pub hash: String,
    pub at: Millis,
    pub mac: String,
}

impl Anchor {
    fn payload(tenant: &str, seq: i64, hash: &str, at: Millis) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + tenant.len() + hash.len());
        for s in [DOMAIN, tenant, hash] {
            b.extend_from_slice(&(s.len() as u64).to_be_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&at.to_be_bytes());
        b
    }

    pub fn sign(key: &AuditKey, tenant: &TenantId, seq: i64, hash: &str) -> Anchor {
        let at = now_ms();
        Anchor {
            tenant: tenant.as_str().to_owned(),
            seq,
            hash: hash.to_owned(),
            at,
            mac: key.mac(&Self::payload(tenant.as_str(), seq, hash, at)),
        }
    }

    fn signed_by(&self, key: &AuditKey) -> bool {
        // Not secret-dependent timing that matters here: the MAC is public
        // in the object store anyway; the check is whether it recomputes.
        self.mac == key.mac(&Self::payload(&self.tenant, self.seq, &self.hash, self.at))
    }
}

/// The anchors in an object store, signed with one key.
#[derive(Clone)]
pub struct Anchors {
    pub(crate) store: Arc<dyn ObjectStore>,
    key: AuditKey,
}

impl std::fmt::Debug for Anchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchors").finish_non_exhaustive()
    }
}

fn path(tenant: &TenantId) -> ObjectPath {
    ObjectPath::from_iter(["audit", tenant.as_str(), "head"])
}

impl Anchors {
    pub fn new(objects: &Objects, key: AuditKey) -> Anchors {
        Anchors {
            store: Arc::clone(objects.store()),
            key,
        }
    }

    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    /// Writes the tenant's anchor for the head `seq`/`hash`.
    pub async fn write(&self, tenant: &TenantId, seq: i64, hash: &str) -> Result<()> {
        let a = Anchor::sign(&self.key, tenant, seq, hash);
        let body = serde_json::to_vec(&a)
            .map_err(|e| StoreError::Corrupt(format!("audit anchor: {e}")))?;
        self.store
            .put(&path(tenant), PutPayload::from(body))
            .await?;
        Ok(())
    }

    /// The tenant's anchor, if it has one. One that does not parse, names
    /// another tenant or whose signature does not recompute is `Corrupt`.
    pub async fn read(&self, tenant: &TenantId) -> Result<Option<Anchor>> {
        let bytes = match self.store.get(&path(tenant)).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let a: Anchor = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("the audit anchor does not parse: {e}")))?;
        if a.tenant != tenant.as_str() || !a.signed_by(&self.key) {
            return Err(StoreError::Corrupt(
                "the audit anchor's signature does not verify (forged or altered)".into(),
            ));
        }
        Ok(Some(a))
    }

    /// Every tenant with an anchor (whether or not its chain is still
    /// in the database).
    pub async fn tenants(&self) -> Result<Vec<TenantId>> {
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&ObjectPath::from("audit")));
        while let Some(o) = listing.try_next().await? {
            let parts: Vec<_> = o.location.parts().collect();
            if let [_, tenant, head] = parts.as_slice() {
                if head.as_ref() == "head" {
                    if let Some(t) = TenantId::parse(tenant.as_ref()) {
                        out.push(t);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

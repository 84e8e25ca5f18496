//! Chains from before audit keys, anchored once: the first server start
//! with a key verifies each unkeyed chain and anchors its head, so from then
//! on it is vouched for like a keyed one (see `audit.rs` and `anchor.rs`).

use crate::anchor::{Anchors, ADOPTED};
use crate::audit::Verifier;
use crate::{now_ms, MetaStore, Result};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

impl Anchors {
    /// Once per store: anchors the heads of chains written before chains
    /// were keyed, so from now on they are vouched for like keyed ones. A
    /// chain that does not verify is left unanchored (verification will
    /// show it). Returns how many were anchored.
    pub async fn adopt_unkeyed(&self, meta: &dyn MetaStore) -> Result<u64> {
        let marker = ObjectPath::from(ADOPTED);
        match self.store.head(&marker).await {
            Ok(_) => return Ok(0),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let mut adopted = 0;
        for tenant in meta.audit_tenants().await? {
            if self.read(&tenant).await?.is_some() {
                continue;
            }
            let mut v = Verifier::new();
            let mut after = 0;
            let mut head = None;
            let ok = loop {
                let page = meta.list_audit(&tenant, after, 1000).await?;
                let Some(last) = page.last() else { break true };
                after = last.seq;
                if page.iter().try_for_each(|e| v.push(e)).is_err() {
                    break false;
                }
                head = Some((last.seq, last.hash.clone()));
            };
            match (ok, head) {
                (true, Some((seq, hash))) => {
                    self.write(&tenant, seq, &hash).await?;
                    adopted += 1;
                }
                (false, _) => {
                    tracing::error!(%tenant, "audit chain does not verify; not anchored");
                }
                _ => {}
            }
        }
        self.store
            .put(&marker, PutPayload::from(now_ms().to_string().into_bytes()))
            .await?;
        Ok(adopted)
    }
}

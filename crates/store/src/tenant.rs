//! [`TenantStore`]: everything one authenticated tenant may touch.

use crate::objects::Gate;
use crate::*;
use std::sync::Arc;

/// How far ahead of the bytes received an upload of unknown length
/// reserves storage (one database write per step, not per chunk).
pub const RESERVE_STEP: u64 = 1 << 20;

/// Reserves an upload's bytes as it streams in (see
/// [`TenantStore::put_file`]).
struct Reserve<'a> {
    meta: &'a dyn MetaStore,
    tenant: &'a TenantId,
    id: &'a str,
    reserved: u64,
    declared: Option<u64>,
}

#[async_trait::async_trait]
impl Gate for Reserve<'_> {
    async fn grow(&mut self, total: u64) -> Result<()> {
        if total <= self.reserved {
            return Ok(());
        }
        // The declared length at once (a too large upload is refused before
        // its body is read), else a step ahead; a step that does not fit
        // falls back to exactly what is needed.
        let (ahead, exact_fallback) = match self.declared.take() {
            Some(d) => (d.max(total), false),
            None => (self.reserved.saturating_add(RESERVE_STEP).max(total), true),
        };
        match self.meta.reserve_storage(self.tenant, self.id, ahead).await {
            Ok(()) => self.reserved = ahead,
            Err(StoreError::StorageQuota { .. }) if exact_fallback && ahead > total => {
                self.meta
                    .reserve_storage(self.tenant, self.id, total)
                    .await?;
                self.reserved = total;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// A tenant's view of the store. Made only from a tenant id the server has
/// authenticated; every call is scoped to that tenant by construction.
#[derive(Clone)]
pub struct TenantStore {
    tenant: TenantId,
    meta: Arc<dyn MetaStore>,
    objects: TenantObjects,
}

impl TenantStore {
    pub fn new(tenant: TenantId, meta: Arc<dyn MetaStore>, objects: &Objects) -> TenantStore {
        let objects = objects.tenant(&tenant);
        TenantStore {
            tenant,
            meta,
            objects,
        }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    pub fn objects(&self) -> &TenantObjects {
        &self.objects
    }

    pub async fn tenant(&self) -> Result<Option<Tenant>> {
        self.meta.get_tenant(&self.tenant).await
    }

    pub async fn insert_file(&self, file: &FileMeta) -> Result<()> {
        if file.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("file of another tenant".into()));
        }
        self.meta.insert_file(file).await
    }

    pub async fn get_file(&self, id: &FileId) -> Result<Option<FileMeta>> {
        self.meta.get_file(&self.tenant, id).await
    }

    pub async fn list_files(&self, after: Option<&str>, limit: u32) -> Result<Page<FileMeta>> {
        self.meta.list_files(&self.tenant, after, limit).await
    }

    pub async fn delete_file(&self, id: &FileId) -> Result<bool> {
        self.meta.delete_file(&self.tenant, id).await
    }

    /// Streams an upload into the tenant's files as object `id`, reserving
    /// its bytes against the storage quota before writing them (all of
    /// `declared` at once when the client said how much it sends, else
    /// [`RESERVE_STEP`] at a time). Past the quota it fails with
    /// [`StoreError::StorageQuota`], past `max_bytes` with `TooLarge`. On
    /// failure nothing is kept; on success the reservation stays until
    /// [`insert_file`](Self::insert_file) replaces it with the file's row
    /// or [`release_upload`](Self::release_upload) drops it.
    pub async fn put_file<S, E>(
        &self,
        id: &FileId,
        stream: S,
        max_bytes: u64,
        declared: Option<u64>,
    ) -> Result<PutResult>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let mut gate = Reserve {
            meta: self.meta.as_ref(),
            tenant: &self.tenant,
            id: id.as_str(),
            reserved: 0,
            declared: declared.map(|d| d.min(max_bytes)),
        };
        let put = self
            .objects
            .put_stream_with(ObjectKind::Files, id.as_str(), stream, max_bytes, &mut gate)
            .await;
        if put.is_err() {
            self.release_upload(id).await;
        }
        put
    }

    /// Drops what an upload reserved (it was refused after it was stored).
    /// A failure is logged: the start-up sweep drops it at the latest.
    pub async fn release_upload(&self, id: &FileId) {
        if let Err(e) = self.meta.release_storage(&self.tenant, id.as_str()).await {
            tracing::warn!(file = %id, error = %e, "could not release a storage reservation");
        }
    }

    pub async fn storage_bytes(&self) -> Result<u64> {
        self.meta.storage_bytes(&self.tenant).await
    }

    pub async fn insert_sandbox(&self, sb: &SandboxRecord) -> Result<()> {
        if sb.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("sandbox of another tenant".into()));
        }
        self.meta.insert_sandbox(sb).await
    }

    pub async fn egress(
        &self,
        sandbox: &SandboxId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EgressEntry>> {
        self.meta
            .list_egress(&self.tenant, sandbox, after, limit)
            .await
    }

    pub async fn set_sandbox_network(
        &self,
        sandbox: &SandboxId,
        network: &serde_json::Value,
    ) -> Result<bool> {
        self.meta
            .set_sandbox_network(&self.tenant, sandbox, network)
            .await
    }

    pub async fn get_sandbox(&self, id: &SandboxId) -> Result<Option<SandboxRecord>> {
        self.meta.get_sandbox(&self.tenant, id).await
    }

    pub async fn list_sandboxes(
        &self,
        filter: &SandboxFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<SandboxRecord>> {
        self.meta
            .list_sandboxes(&self.tenant, filter, after, limit)
            .await
    }

    pub async fn set_sandbox_expiry(&self, id: &SandboxId, expires_at: Millis) -> Result<bool> {
        self.meta
            .set_sandbox_expiry(&self.tenant, id, expires_at)
            .await
    }

    /// See [`MetaStore::resume_sandbox`].
    pub async fn resume_sandbox(
        &self,
        id: &SandboxId,
        owner: &str,
        expires_at: Millis,
    ) -> Result<bool> {
        self.meta
            .resume_sandbox(&self.tenant, id, owner, expires_at)
            .await
    }

    /// See [`MetaStore::end_paused_sandbox`].
    pub async fn end_paused_sandbox(
        &self,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
    ) -> Result<bool> {
        self.meta
            .end_paused_sandbox(&self.tenant, id, state, reason)
            .await
    }

    /// The newest pause snapshot of one of this tenant's sandboxes.
    pub async fn pause_snapshot(&self, sandbox: &SandboxId) -> Result<Option<SnapshotRecord>> {
        self.meta.pause_snapshot(&self.tenant, sandbox).await
    }

    pub async fn end_sandbox(
        &self,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
        usage: Option<Usage>,
    ) -> Result<bool> {
        self.meta
            .end_sandbox(&self.tenant, id, state, reason, usage)
            .await
    }

    pub async fn running_totals(&self) -> Result<(u32, u64)> {
        self.meta.running_totals(&self.tenant).await
    }

    pub async fn usage_between(&self, from: Millis, to: Millis) -> Result<UsageSum> {
        self.meta.usage_between(&self.tenant, from, to).await
    }

    pub async fn audit(&self, event: &AuditEvent) -> Result<AuditEntry> {
        self.meta.append_audit(&self.tenant, event).await
    }

    pub async fn list_audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.meta.list_audit(&self.tenant, after_seq, limit).await
    }

    pub async fn list_audit_about(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.meta.list_audit_about(&self.tenant, q).await
    }

    /// Records one of this tenant's volumes (see
    /// [`MetaStore::create_volume`]).
    pub async fn create_volume(&self, volume: &VolumeRecord) -> Result<()> {
        if volume.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("volume of another tenant".into()));
        }
        self.meta.create_volume(volume).await
    }

    pub async fn list_volumes(&self) -> Result<Vec<VolumeRecord>> {
        self.meta.list_volumes(&self.tenant).await
    }

    /// This tenant's volume named by its id or, failing that, its name.
    pub async fn find_volume(&self, id_or_name: &str) -> Result<Option<VolumeRecord>> {
        match VolumeId::parse(id_or_name) {
            Some(id) => self.meta.get_volume(&self.tenant, &id).await,
            None => self.meta.get_volume_by_name(&self.tenant, id_or_name).await,
        }
    }

    pub async fn delete_volume(&self, id: &VolumeId) -> Result<bool> {
        self.meta.delete_volume(&self.tenant, id).await
    }

    /// Starts one of this tenant's snapshots (see
    /// [`MetaStore::begin_snapshot`]).
    pub async fn begin_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()> {
        if snapshot.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("snapshot of another tenant".into()));
        }
        self.meta.begin_snapshot(snapshot).await
    }

    /// See [`MetaStore::hold_blob`].
    pub async fn hold_blob(
        &self,
        id: &SnapshotId,
        digest: &str,
        key: &BlobKey,
        size: u64,
    ) -> Result<BlobHold> {
        self.meta
            .hold_blob(&self.tenant, id, digest, key, size)
            .await
    }

    pub async fn finish_snapshot(&self, snapshot: &SnapshotRecord) -> Result<bool> {
        if snapshot.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("snapshot of another tenant".into()));
        }
        self.meta.finish_snapshot(snapshot).await
    }

    pub async fn list_snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        self.meta.list_snapshots(&self.tenant).await
    }

    /// This tenant's snapshot named by its id or, failing that, its name.
    pub async fn find_snapshot(&self, id_or_name: &str) -> Result<Option<SnapshotRecord>> {
        match SnapshotId::parse(id_or_name) {
            Some(id) => self.meta.get_snapshot(&self.tenant, &id).await,
            None => {
                self.meta
                    .get_snapshot_by_name(&self.tenant, id_or_name)
                    .await
            }
        }
    }

    /// Records (or replaces) one of this tenant's images (see
    /// [`MetaStore::put_image`]).
    pub async fn put_image(&self, image: &ImageRecord) -> Result<()> {
        if image.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("image of another tenant".into()));
        }
        self.meta.put_image(image).await
    }

    pub async fn get_image(&self, name: &str) -> Result<Option<ImageRecord>> {
        self.meta.get_image(&self.tenant, name).await
    }

    pub async fn list_images(&self) -> Result<Vec<ImageRecord>> {
        self.meta.list_images(&self.tenant).await
    }

    pub async fn delete_image(&self, name: &str) -> Result<bool> {
        self.meta.delete_image(&self.tenant, name).await
    }

    pub async fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        if layer.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("layer of another tenant".into()));
        }
        self.meta.put_layer(layer).await
    }

    pub async fn get_layer(&self, key: &str) -> Result<Option<LayerRecord>> {
        self.meta.get_layer(&self.tenant, key).await
    }

    pub async fn unused_layers(&self) -> Result<Vec<LayerRecord>> {
        self.meta.unused_layers(&self.tenant).await
    }

    pub async fn delete_layer(&self, key: &str) -> Result<bool> {
        self.meta.delete_layer(&self.tenant, key).await
    }

    /// See [`MetaStore::hold_known_blob`].
    pub async fn hold_known_blob(&self, id: &SnapshotId, digest: &str) -> Result<Option<BlobKey>> {
        self.meta.hold_known_blob(&self.tenant, id, digest).await
    }

    /// See [`MetaStore::rebase_snapshot`].
    pub async fn rebase_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        self.meta.rebase_snapshot(&self.tenant, id).await
    }

    /// See [`MetaStore::delete_snapshot`].
    pub async fn delete_snapshot(&self, id: &SnapshotId) -> Result<Option<Vec<BlobKey>>> {
        self.meta.delete_snapshot(&self.tenant, id).await
    }

    /// Stores one of this tenant's secrets (see [`MetaStore::put_secret`]).
    pub async fn put_secret(&self, secret: &SecretRecord, replace: bool) -> Result<SecretMeta> {
        if secret.tenant_id != self.tenant {
            return Err(StoreError::Corrupt("secret of another tenant".into()));
        }
        self.meta.put_secret(secret, replace).await
    }

    pub async fn list_secrets(&self) -> Result<Vec<SecretMeta>> {
        self.meta.list_secrets(&self.tenant).await
    }

    pub async fn get_secret(&self, name: &str) -> Result<Option<SecretRecord>> {
        self.meta.get_secret(&self.tenant, name).await
    }

    pub async fn delete_secret(&self, name: &str) -> Result<bool> {
        self.meta.delete_secret(&self.tenant, name).await
    }
}

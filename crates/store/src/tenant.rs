//! [`TenantStore`]: everything one authenticated tenant may touch.

use crate::*;
use std::sync::Arc;

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

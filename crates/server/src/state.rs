//! What every handler shares.

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::manager::Manager;
use crate::service::audit::{self, Audit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use warden_store::{JobStore, MetaStore, Objects, TenantId, TenantStore};

pub struct AppState {
    pub cfg: Config,
    pub meta: Arc<dyn MetaStore>,
    /// The review-job queue (the same database as `meta`).
    pub jobs: Arc<dyn JobStore>,
    pub jobs_handle: crate::jobs::handle::JobsHandle,
    pub objects: Objects,
    /// sha256 of the admin token.
    pub admin_hash: [u8; 32],
    /// Key for signed upload URLs.
    pub signing_key: Vec<u8>,
    /// Encrypts tenant secrets; None when no key is configured (secrets
    /// are then refused with 503).
    pub vault: Option<crate::secrets::Vault>,
    pub sandboxes: Arc<Manager>,
    pub draining: AtomicBool,
    /// What tenants' requests make the server buffer (JSON-mode exec
    /// output, E2B polling watchers' events): per tenant, and in all.
    pub buffers: crate::budget::Buffers,
    /// The tenants' volumes on this node (`<data>/volumes`).
    pub volumes: Arc<warden_runtime::volume::Volumes>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn tenant_store(&self, id: TenantId) -> TenantStore {
        TenantStore::new(id, self.meta.clone(), &self.objects)
    }

    /// Appends to the tenant's audit chain. A failure fails the request
    /// that made it (the effect went unrecorded): a full disk answers 507,
    /// anything else 500.
    pub async fn audit(&self, tenant: &TenantId, entry: Audit<'_>) -> ApiResult<()> {
        audit::append(self.meta.as_ref(), tenant, entry)
            .await
            .map_err(ApiError::from)
    }

    /// Logs of jobs running on this node.
    pub fn logs_dir(&self) -> std::path::PathBuf {
        self.cfg.data_dir.join("logs")
    }

    /// Scratch space (exports of `/output` on their way to the store).
    pub fn work_dir(&self) -> std::path::PathBuf {
        self.cfg.data_dir.join("work")
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

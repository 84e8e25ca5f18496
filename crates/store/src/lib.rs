//! Warden's storage: metadata (tenants, keys, files, sandboxes, audit, usage)
//! behind [`MetaStore`], and objects (uploaded bytes) behind [`Objects`].
//!
//! Tenant scoping is in the types: the server's tenant-facing handlers only
//! ever hold a [`TenantStore`], made from an authenticated [`TenantId`], and
//! every query and object key it can produce carries that tenant's id. There
//! is no method on it that takes another tenant's id.
//!
//! The embedded defaults are SQLite (`sqlite::SqliteMeta`) and a local
//! directory (`Objects::local`); PostgreSQL and S3 are further
//! implementations of the same trait and of `object_store::ObjectStore`.

mod adopt;
pub mod anchor;
pub mod audit;
mod audit_key;
pub mod egress;
mod hashing;
pub mod ids;
pub mod jobs;
pub mod objects;
pub mod sqlite;
pub mod sweep;
mod tenant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use egress::{EgressEntry, EgressLog};
pub use ids::{
    BlobKey, DeliveryId, FileId, KeyId, OutputId, ReviewId, SandboxId, ScheduleId, SnapshotId,
    TenantId, VolumeId,
};
pub use jobs::JobStore;
pub use objects::{Gate, ObjectKind, Objects, PutResult, TenantObjects};
pub use tenant::{TenantStore, RESERVE_STEP};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the object is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("upload stream: {0}")]
    Upload(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0} already exists")]
    Conflict(String),
    /// A row the call refers to does not exist (e.g. an output for a job
    /// that is not the tenant's); the message names what was missing.
    #[error("{0} not found")]
    NotFound(String),
    /// The call itself makes no sense (a caller bug, not bad data).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    /// Storing `wanted` more bytes would take the tenant past its storage
    /// quota (files plus uploads in flight).
    /// Past a quota on how many of something a tenant keeps (the message
    /// names the quota).
    #[error("{0}")]
    CountQuota(String),
    #[error("max_storage_bytes: the tenant's storage quota is {limit} bytes, {used} are in use or reserved, this needs {wanted}")]
    StorageQuota { used: u64, wanted: u64, limit: u64 },
}

impl StoreError {
    /// Whether the error is the disk (or a disk quota) being full: the
    /// database's `SQLITE_FULL`, or `ENOSPC`/`EDQUOT` from a file write,
    /// however deep in the object store's error chain.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => sqlite_full(d.code().as_deref()),
            StoreError::Db(sqlx::Error::Io(e)) | StoreError::Io(e) => io_full(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(d))) => {
                sqlite_full(d.code().as_deref())
            }
            StoreError::Object(e) => chain_full(e),
            _ => false,
        }
    }
}

/// SQLite's primary result code `SQLITE_FULL` (13); sqlx reports the
/// extended code, whose low byte is the primary one.
fn sqlite_full(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| c & 0xff == 13)
}

fn io_full(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_codes::ENOSPC | libc_codes::EDQUOT)
    ) || e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
}

fn chain_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io_full(io) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// The two errno values of a full disk (Linux numbering).
mod libc_codes {
    pub const ENOSPC: i32 = 28;
    pub const EDQUOT: i32 = 122;
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch (every timestamp in the store).
pub type Millis = i64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Per-tenant limits; the server refuses work beyond them with 429/413.
/// Memory, CPUs and PIDs are totals over the tenant's running sandboxes
/// and review jobs; `max_sandboxes` counts interactive sandboxes only.
/// Fields missing from a stored row (older versions) take the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotas {
    pub max_sandboxes: u32,
    pub max_memory_bytes: u64,
    pub max_storage_bytes: u64,
    pub max_file_bytes: u64,
    /// Sum of the `cpus` limits of everything running, in whole CPUs.
    pub max_cpus: u32,
    /// Sum of the `pids` limits of everything running.
    pub max_pids: u64,
    /// Volumes the tenant may keep (their sizes count in
    /// `max_storage_bytes`).
    pub max_volumes: u32,
    /// Snapshots the tenant may keep (their blobs count in
    /// `max_storage_bytes`, each once however many snapshots hold it).
    pub max_snapshots: u32,
    /// Images the tenant may keep (their layers' files count in
    /// `max_storage_bytes`).
    pub max_images: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_sandboxes: 20,
            max_memory_bytes: 8 << 30,
            max_storage_bytes: 10 << 30,
            max_file_bytes: 1 << 30,
            // Above what max_sandboxes of default-sized sandboxes (1 CPU,
            // 256 PIDs) take, so tenants stored before these existed keep
            // what they had; operators lower them per tenant.
            max_cpus: 64,
            max_pids: 16_384,
            max_volumes: 16,
            max_snapshots: 32,
            max_images: 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub disabled: bool,
    pub created_at: Millis,
    pub quotas: Quotas,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub id: FileId,
    pub tenant_id: TenantId,
    pub name: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// Sniffed from the bytes (never from the name).
    pub content_type: String,
    pub created_at: Millis,
    /// The upload scanner's verdict: `None` when no scanner ran, else
    /// `clean` or `error: <why>` (see the server's upload checks).
    #[serde(default)]
    pub scan: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    Running,
    /// Deleted by its tenant (or by a tenant delete with force).
    Stopped,
    /// Destroyed because it passed its timeout.
    TimedOut,
    /// Lost: the server that ran it died; reaped at the next start.
    Lost,
    /// Could not be started or died on its own.
    Failed,
    /// Paused: its processes ended, its files kept in a pause snapshot
    /// until it resumes (as `Running`, with the same id).
    Paused,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Running => "running",
            SandboxState::Stopped => "stopped",
            SandboxState::TimedOut => "timed_out",
            SandboxState::Lost => "lost",
            SandboxState::Failed => "failed",
            SandboxState::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<SandboxState> {
        Some(match s {
            "running" => SandboxState::Running,
            "stopped" => SandboxState::Stopped,
            "timed_out" => SandboxState::TimedOut,
            "lost" => SandboxState::Lost,
            "failed" => SandboxState::Failed,
            "paused" => SandboxState::Paused,
            _ => return None,
        })
    }
}

/// Resource usage of one sandbox, read from its cgroup at the end.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub peak_memory_bytes: u64,
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: SandboxId,
    pub tenant_id: TenantId,
    pub state: SandboxState,
    /// The request as the server accepted it (image, limits, env names...),
    /// as JSON. Never holds secret values.
    pub spec: serde_json::Value,
    pub labels: BTreeMap<String, String>,
    /// Memory limit, counted against the tenant's memory quota while running.
    pub memory_bytes: u64,
    /// Which server process runs it (so a restarted server can tell its
    /// predecessor's sandboxes from its own).
    pub owner: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub ended_at: Option<Millis>,
    pub end_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// Filters for listing sandboxes.
#[derive(Debug, Clone, Default)]
pub struct SandboxFilter {
    /// Any of these states; empty: every state.
    pub states: Vec<SandboxState>,
    /// Every pair must match.
    pub labels: BTreeMap<String, String>,
    /// Newest first (E2B's order) instead of oldest first; the cursor
    /// leads on in the same direction.
    pub newest_first: bool,
}

/// One audit entry. `hash = sha256(prev_hash || canonical fields)`; see
/// [`audit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    pub tenant_id: TenantId,
    /// `admin`, or the id of the API key that made the request, or `system`.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `ok`, or a short reason it failed.
    pub outcome: String,
    pub at: Millis,
    pub prev_hash: String,
    pub hash: String,
}

/// What an audit entry says before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// Which of a tenant's audit entries concern one target: the target
/// itself or `target:<detail>` (how sandbox operations name theirs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub target: String,
    /// Entries at or after this time...
    pub from_ms: Option<Millis>,
    /// ...and at or before this one.
    pub until_ms: Option<Millis>,
    /// Entries with `seq` above this (forward paging).
    pub after_seq: Option<i64>,
    /// Entries with `seq` below this (backward paging).
    pub before_seq: Option<i64>,
    /// Newest first.
    pub descending: bool,
    pub limit: u32,
}

/// A tenant secret as stored: the server's ciphertext of the value (with
/// its nonce), never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub tenant_id: TenantId,
    /// An environment variable name, unique within the tenant.
    pub name: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What may be shown of a secret: its name and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A tenant's volume (see the runtime's `volume.rs` for its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub id: VolumeId,
    pub tenant_id: TenantId,
    /// Unique within the tenant.
    pub name: String,
    pub size_bytes: u64,
    pub created_at: Millis,
}

/// A tenant's snapshot of a sandbox's files (the manifest and blobs are
/// objects; see `sqlite/snapshots.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub tenant_id: TenantId,
    /// Unique within the tenant when set.
    pub name: Option<String>,
    pub source_sandbox: SandboxId,
    /// False while its files are being taken.
    pub ready: bool,
    /// Why it is kept: asked for (listed), a paused sandbox's files, or a
    /// step of a built image.
    pub purpose: SnapshotPurpose,
    /// What a sandbox made from it starts as (the server's shape).
    pub spec: serde_json::Value,
    pub files: u64,
    /// The bytes of its files (stored once per tenant per content).
    pub bytes: u64,
    pub manifest_bytes: u64,
    /// Bytes it holds outside the blob store (a memory pause's checkpoint),
    /// counted in `max_storage_bytes`: when it begins, what it may come to
    /// (checked against the quota then); once ready, what it holds.
    pub held_bytes: u64,
    pub created_at: Millis,
}

/// Why a snapshot is kept. Only `User` snapshots are listed, found by
/// name and counted in `max_snapshots`; the others belong to what made
/// them (a paused sandbox until it resumes or is deleted; an image's layer
/// while an image names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotPurpose {
    User,
    Pause,
    Layer,
    /// A fork's files, kept until the new sandbox has them.
    Fork,
    /// The files a running sandbox was resumed from (its last pause's),
    /// kept while it runs: its next snapshots take the files it has not
    /// touched since from these blobs instead of reading them again.
    Base,
}

impl SnapshotPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotPurpose::User => "user",
            SnapshotPurpose::Pause => "pause",
            SnapshotPurpose::Layer => "layer",
            SnapshotPurpose::Fork => "fork",
            SnapshotPurpose::Base => "base",
        }
    }
}

/// A tenant's image built in steps from an operator's image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub tenant_id: TenantId,
    /// Unique within the tenant.
    pub name: String,
    pub base: String,
    /// The steps as asked.
    pub steps: serde_json::Value,
    /// Its layers' keys, first step first.
    pub layers: Vec<String>,
    pub content_sha256: String,
    /// `name=version` of its Debian and Python packages.
    pub packages: Vec<String>,
    pub built_at: Millis,
}

/// One built step of a tenant's image: what the step changed, kept as a
/// layer snapshot, found by the step's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub tenant_id: TenantId,
    pub key: String,
    /// The layer below; None for a first step.
    pub parent: Option<String>,
    /// The operator's image at the bottom.
    pub base: String,
    pub snapshot_id: SnapshotId,
    /// The content digest of the image up to and with this layer.
    pub content_sha256: String,
    pub packages: Vec<String>,
    pub created_at: Millis,
}

/// A blob a snapshot holds: its content's SHA-256 and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHold {
    pub key: BlobKey,
    /// Whether the object the caller stored under its own key is now the
    /// blob (else the content was already stored under `key`, and the
    /// caller's object is to be deleted).
    pub adopted: bool,
}

/// A review job submitted on a cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub id: ScheduleId,
    pub tenant_id: TenantId,
    /// Unique within the tenant.
    pub name: String,
    pub cron: String,
    /// The review each slot submits (`SubmitReview`).
    pub review: serde_json::Value,
    pub paused: bool,
    /// The next slot to submit.
    pub next_run_at: Millis,
    pub last_run_at: Option<Millis>,
    pub last_review_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Millis,
}

/// What submitting one slot of a schedule came to, recorded as it moves
/// on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    /// The slot submitted.
    pub slot: Millis,
    /// The slot after it.
    pub next: Millis,
    pub review_id: Option<String>,
    pub error: Option<String>,
}

/// Sums over sandboxes that ended within a time window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct UsageSum {
    pub sandboxes: u64,
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    /// The largest peak of any one sandbox.
    pub max_peak_memory_bytes: u64,
}

/// One page of a listing; `next` is the cursor for the following page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Metadata storage. Tenant-owned rows are always addressed with their
/// tenant's id, and every implementation must include it in the query (a
/// row of another tenant is "not found", never an error that says more).
/// Listings are ordered by creation (ids are unique; cursor = last id seen).
#[async_trait]
pub trait MetaStore: EgressLog + Send + Sync {
    // --- operator settings (e.g. the admin token's hash) ---
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    async fn set_setting(&self, key: &str, value: &str) -> Result<()>;

    // --- tenants (admin) ---
    async fn create_tenant(&self, name: &str, quotas: Quotas) -> Result<Tenant>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>>;
    async fn list_tenants(&self, after: Option<&str>, limit: u32) -> Result<Page<Tenant>>;
    /// Returns false when no such tenant.
    async fn set_tenant_disabled(&self, id: &TenantId, disabled: bool) -> Result<bool>;
    async fn set_tenant_quotas(&self, id: &TenantId, quotas: Quotas) -> Result<bool>;
    /// Removes the tenant, its keys, file rows and sandbox rows, and (for
    /// stores that are also a [`JobStore`]) its review jobs, their output
    /// rows and webhook deliveries, and its webhook secret; its audit chain
    /// is kept. Objects are the caller's to delete. Returns false when no
    /// such tenant.
    async fn delete_tenant(&self, id: &TenantId) -> Result<bool>;

    // --- API keys ---
    /// `secret_hash` is the lower-case hex sha256 of the key's secret part.
    async fn create_key(&self, tenant: &TenantId, name: &str, secret_hash: &str) -> Result<ApiKey>;
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>>;
    async fn revoke_key(&self, tenant: &TenantId, key: &KeyId) -> Result<bool>;
    /// The key and its secret hash, for authentication.
    async fn find_key(&self, key: &KeyId) -> Result<Option<(ApiKey, String)>>;

    // --- files ---
    async fn insert_file(&self, file: &FileMeta) -> Result<()>;
    async fn get_file(&self, tenant: &TenantId, id: &FileId) -> Result<Option<FileMeta>>;
    async fn list_files(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<FileMeta>>;
    async fn delete_file(&self, tenant: &TenantId, id: &FileId) -> Result<bool>;
    /// The tenant's storage in use, as its quota counts it (less what
    /// uploads in flight have reserved): files, review outputs and stored
    /// logs, volumes, snapshots' blobs and manifests, memory pauses'
    /// checkpoints.
    async fn storage_bytes(&self, tenant: &TenantId) -> Result<u64>;
    /// Sets the storage reservation `id` (an upload in flight) of the
    /// tenant to `bytes`, if the tenant's files plus its other reservations
    /// plus `bytes` stay within its storage quota; else
    /// [`StoreError::StorageQuota`]. Check and reservation are atomic.
    async fn reserve_storage(&self, tenant: &TenantId, id: &str, bytes: u64) -> Result<()>;
    /// Drops a reservation (the upload failed); inserting the file whose id
    /// it has drops it too. Missing is not an error.
    async fn release_storage(&self, tenant: &TenantId, id: &str) -> Result<()>;
    /// Drops every reservation made before `before` (a dead process's,
    /// at start-up); returns how many.
    async fn clear_storage_reservations(&self, before: Millis) -> Result<u64>;
    /// Whether a row points at the tenant's object `id` of `kind` (a file,
    /// an output, a review's log): the start-up sweep removes those that
    /// none does.
    async fn object_referenced(
        &self,
        tenant: &TenantId,
        kind: ObjectKind,
        id: &str,
    ) -> Result<bool>;
    /// Records a signed upload URL's nonce as used; false if it already was
    /// (each URL accepts one upload).
    async fn use_upload_nonce(&self, nonce: &str, expires_at: Millis) -> Result<bool>;

    // --- sandboxes ---
    async fn insert_sandbox(&self, sb: &SandboxRecord) -> Result<()>;
    /// The tenant of sandbox `id`, whoever's it is (for a request that
    /// proved itself with the sandbox's own token and names no tenant).
    async fn sandbox_tenant(&self, id: &SandboxId) -> Result<Option<TenantId>>;
    async fn get_sandbox(&self, tenant: &TenantId, id: &SandboxId)
        -> Result<Option<SandboxRecord>>;
    async fn list_sandboxes(
        &self,
        tenant: &TenantId,
        filter: &SandboxFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<SandboxRecord>>;
    async fn set_sandbox_expiry(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        expires_at: Millis,
    ) -> Result<bool>;
    /// Moves a running sandbox to a final state (or `Paused`), adding
    /// `usage` to what it used before; false if it was not running.
    async fn end_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
        usage: Option<Usage>,
    ) -> Result<bool>;
    /// Moves a paused sandbox back to running, run by `owner` until
    /// `expires_at`; false if it was not paused (another resume won).
    async fn resume_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        owner: &str,
        expires_at: Millis,
    ) -> Result<bool>;
    /// Ends a paused sandbox (deleted while paused); false if it was not.
    async fn end_paused_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
    ) -> Result<bool>;
    /// Running sandboxes and the sum of their memory limits.
    async fn running_totals(&self, tenant: &TenantId) -> Result<(u32, u64)>;
    /// Marks every running sandbox whose owner is not `owner` as `Lost`
    /// and returns them (a restarted server's predecessor's sandboxes).
    async fn reap_foreign(&self, owner: &str) -> Result<Vec<SandboxRecord>>;
    async fn usage_between(&self, tenant: &TenantId, from: Millis, to: Millis) -> Result<UsageSum>;

    // --- audit ---
    /// Appends to the tenant's chain atomically (seq and prev_hash taken in
    /// the same transaction as the insert).
    async fn append_audit(&self, tenant: &TenantId, event: &AuditEvent) -> Result<AuditEntry>;
    async fn list_audit(
        &self,
        tenant: &TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
    /// The tenant's entries about one target, in `seq` order.
    async fn list_audit_about(&self, tenant: &TenantId, q: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Every tenant that has an audit chain (including deleted tenants).
    async fn audit_tenants(&self) -> Result<Vec<TenantId>>;

    // --- command policy (admin-set; the server owns its JSON shape) ---
    async fn get_command_policy(&self, tenant: &TenantId) -> Result<Option<serde_json::Value>>;
    /// Replaces the tenant's policy; `None` removes it. A tenant that does
    /// not exist is [`StoreError::NotFound`].
    async fn set_command_policy(
        &self,
        tenant: &TenantId,
        policy: Option<&serde_json::Value>,
    ) -> Result<()>;
    // --- volumes ---
    /// Records a volume if the tenant's volume count and storage quota
    /// (files, outputs, logs, reservations and volumes) allow it: one
    /// transaction, so parallel creates cannot both take the last room.
    /// A taken name is a `Conflict`; over a quota, `StorageQuota` or
    /// `CountQuota`.
    async fn create_volume(&self, volume: &VolumeRecord) -> Result<()>;
    async fn list_volumes(&self, tenant: &TenantId) -> Result<Vec<VolumeRecord>>;
    async fn get_volume(&self, tenant: &TenantId, id: &VolumeId) -> Result<Option<VolumeRecord>>;
    async fn get_volume_by_name(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<VolumeRecord>>;
    async fn delete_volume(&self, tenant: &TenantId, id: &VolumeId) -> Result<bool>;
    /// Every tenant's volumes (the start-up sweep matches them to images).
    async fn all_volumes(&self) -> Result<Vec<VolumeRecord>>;

    // --- snapshots ---
    /// Records a snapshot being made, if the tenant keeps fewer than
    /// `max_snapshots` (else `CountQuota`); a taken name is a `Conflict`.
    async fn begin_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()>;
    /// Makes snapshot `id` hold the blob with `digest`. If the tenant has
    /// it stored, that key is returned; else the object the caller stored
    /// under `key` (`size` bytes) becomes the blob, if the tenant's storage
    /// quota allows it (else `StorageQuota`). One transaction.
    async fn hold_blob(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
        digest: &str,
        key: &BlobKey,
        size: u64,
    ) -> Result<BlobHold>;
    /// Makes snapshot `id` (being made) hold the tenant's blob of content
    /// `digest` if one is stored: its key, or None (nothing changed).
    async fn hold_known_blob(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
        digest: &str,
    ) -> Result<Option<BlobKey>>;
    /// Marks a snapshot ready with its totals; false if it is gone.
    async fn finish_snapshot(&self, snapshot: &SnapshotRecord) -> Result<bool>;
    /// Turns the ready pause snapshot `id` into the base of its resumed
    /// sandbox (`SnapshotPurpose::Base`); false if it is no such snapshot.
    async fn rebase_snapshot(&self, tenant: &TenantId, id: &SnapshotId) -> Result<bool>;
    /// The tenant's snapshots, not those paused sandboxes keep.
    async fn list_snapshots(&self, tenant: &TenantId) -> Result<Vec<SnapshotRecord>>;
    /// The newest ready pause snapshot of sandbox `sandbox`.
    async fn pause_snapshot(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
    ) -> Result<Option<SnapshotRecord>>;
    async fn get_snapshot(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
    ) -> Result<Option<SnapshotRecord>>;
    async fn get_snapshot_by_name(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<SnapshotRecord>>;
    /// Deletes a snapshot and the rows of the blobs nothing else holds, in
    /// one transaction; returns their keys (for the caller to delete the
    /// objects), None if there was no such snapshot.
    async fn delete_snapshot(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
    ) -> Result<Option<Vec<BlobKey>>>;
    /// Snapshots of every tenant still being made, forks' files and
    /// resumed sandboxes' bases (after a crash: to be deleted by the
    /// start-up sweep).
    async fn unfinished_snapshots(&self) -> Result<Vec<SnapshotRecord>>;

    // --- images ---
    /// Records (or replaces) a tenant's image; a new name is refused with
    /// `CountQuota` if the tenant keeps `max_images` already.
    async fn put_image(&self, image: &ImageRecord) -> Result<()>;
    async fn get_image(&self, tenant: &TenantId, name: &str) -> Result<Option<ImageRecord>>;
    async fn list_images(&self, tenant: &TenantId) -> Result<Vec<ImageRecord>>;
    async fn delete_image(&self, tenant: &TenantId, name: &str) -> Result<bool>;
    /// Records a built layer (its snapshot is ready).
    async fn put_layer(&self, layer: &LayerRecord) -> Result<()>;
    async fn get_layer(&self, tenant: &TenantId, key: &str) -> Result<Option<LayerRecord>>;
    /// The tenant's layers no image names.
    async fn unused_layers(&self, tenant: &TenantId) -> Result<Vec<LayerRecord>>;
    async fn delete_layer(&self, tenant: &TenantId, key: &str) -> Result<bool>;

    // --- schedules ---
    /// Records a schedule if its tenant keeps fewer than `max` (else
    /// `CountQuota`; the count and the insert are one transaction); a
    /// taken name is a `Conflict`.
    async fn create_schedule(&self, schedule: &ScheduleRecord, max: u32) -> Result<()>;
    async fn list_schedules(&self, tenant: &TenantId) -> Result<Vec<ScheduleRecord>>;
    async fn get_schedule(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
    ) -> Result<Option<ScheduleRecord>>;
    async fn delete_schedule(&self, tenant: &TenantId, id: &ScheduleId) -> Result<bool>;
    /// Pauses or resumes; a resume sets the next slot (`next_run_at`).
    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
        paused: bool,
        next_run_at: Millis,
    ) -> Result<bool>;
    /// Unpaused schedules of every tenant whose next slot is at or before
    /// `now`, soonest first.
    async fn due_schedules(&self, now: Millis, limit: u32) -> Result<Vec<ScheduleRecord>>;
    /// Moves schedule `id` past `run.slot` if its next slot is still
    /// `expected` (another node has not moved it), recording the run;
    /// whether it moved.
    async fn advance_schedule(
        &self,
        id: &ScheduleId,
        expected: Millis,
        run: &ScheduleRun,
    ) -> Result<bool>;

    // --- secrets (ciphertexts only) ---
    /// Stores a secret; an existing name is a `Conflict` unless `replace`,
    /// which swaps the value and keeps `created_at`. Returns what is shown.
    async fn put_secret(&self, secret: &SecretRecord, replace: bool) -> Result<SecretMeta>;
    /// The tenant's secrets by name.
    async fn list_secrets(&self, tenant: &TenantId) -> Result<Vec<SecretMeta>>;
    async fn get_secret(&self, tenant: &TenantId, name: &str) -> Result<Option<SecretRecord>>;
    async fn delete_secret(&self, tenant: &TenantId, name: &str) -> Result<bool>;
}

//! [`MetaStore`] and [`JobStore`] on SQLite (the embedded default), with
//! sqlx.
//!
//! One database file in WAL mode (readers never block the writer), a small
//! connection pool, and a busy timeout so writers queue for the lock instead
//! of failing. Transactions that write start with `BEGIN IMMEDIATE`: they
//! take the write lock up front, because a deferred transaction that reads
//! and then writes can fail with `SQLITE_BUSY` without waiting when another
//! connection wrote in between.
//!
//! Every query on a tenant-owned row has `tenant_id = ?` in it. The queries
//! live in one submodule per area; this module holds the connection setup,
//! shared conversions, and the trait impls, which only delegate.

mod audit;
mod deliveries;
mod egress;
mod files;
mod images;
mod jobs;
mod leases;
mod outputs;
mod policies;
mod reservations;
mod sandboxes;
mod schedules;
mod secrets;
mod snapshots;
mod tenants;
mod volumes;

use crate::jobs::{
    DeliveryRecord, OutputRecord, OutputsDeleted, ReviewEnd, ReviewFilter, ReviewRecord,
};
use crate::*;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const POOL_SIZE: u32 = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest page a listing returns.
const MAX_PAGE: u32 = 1000;
/// Starts a transaction holding the write lock (see the module doc).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Metadata in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteMeta {
    pool: SqlitePool,
    /// Keys audit entries and anchors chains (see [`crate::audit`]); None
    /// writes unkeyed, unanchored entries (tools and tests).
    audit: Option<Arc<audit::Signer>>,
}

/// Opens (creating if missing) the database at `path` and brings its schema
/// up to date.
pub async fn open(path: &Path) -> Result<SqliteMeta> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL is durable against application crashes and
        // keeps the database consistent across power loss (the last
        // transactions may be lost), at far less fsync cost than FULL.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(POOL_SIZE)
        .after_release(|conn, _| Box::pin(healthy_after_use(conn)))
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(SqliteMeta { pool, audit: None })
}

/// Whether a connection going back to the pool is fit to be used again.
///
/// A transaction that ends in an error is rolled back when sqlx's
/// `Transaction` drops, by a command queued to the connection's worker. But
/// when SQLite has already rolled the transaction back itself (it does on
/// `SQLITE_FULL`, e.g. a COMMIT on a full disk), that ROLLBACK fails, sqlx's
/// count of open transactions stays at 1, and every later `BEGIN` on the
/// connection fails ("attempted to call begin_with at non-zero transaction
/// depth") until the process restarts. Such a connection is closed instead
/// of reused; the pool opens a fresh one.
async fn healthy_after_use(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // The queued rollback may not have run yet; a ping is answered after it.
    conn.ping().await?;
    let healthy = !conn.is_in_transaction();
    if !healthy {
        tracing::warn!("closing a database connection left inside a failed transaction");
    }
    Ok(healthy)
}

impl SqliteMeta {
    /// From now on, audit entries are keyed with the anchors' key and every
    /// append rewrites the tenant's anchor.
    pub fn with_audit(mut self, anchors: crate::anchor::Anchors) -> SqliteMeta {
        self.audit = Some(Arc::new(audit::Signer::new(anchors)));
        self
    }

    /// The connection pool, for maintenance and for tests that need to reach
    /// under the trait (e.g. to tamper with a row).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// u64 values are stored as INTEGER, which is signed.
fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} is too large to store")))
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

/// Counts stored as INTEGER that the API holds as u32.
fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

fn json(v: &impl serde::Serialize, what: &str) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The usage columns (`cpu_seconds`, `peak_memory_bytes`, `wall_seconds`),
/// all NULL when there is no usage.
fn usage_cols(u: Option<Usage>) -> Result<(Option<f64>, Option<i64>, Option<f64>)> {
    Ok(match u {
        Some(u) => (
            Some(u.cpu_seconds),
            Some(to_i64(u.peak_memory_bytes, "peak memory")?),
            Some(u.wall_seconds),
        ),
        None => (None, None, None),
    })
}

/// Reads back what [`usage_cols`] wrote; `of` names the row for errors.
fn usage_from_row(row: &sqlx::sqlite::SqliteRow, of: &str) -> Result<Option<Usage>> {
    use sqlx::Row;
    let cpu: Option<f64> = row.try_get("cpu_seconds")?;
    let peak: Option<i64> = row.try_get("peak_memory_bytes")?;
    let wall: Option<f64> = row.try_get("wall_seconds")?;
    match (cpu, peak, wall) {
        (Some(cpu_seconds), Some(peak), Some(wall_seconds)) => Ok(Some(Usage {
            cpu_seconds,
            peak_memory_bytes: to_u64(peak, "peak memory")?,
            wall_seconds,
        })),
        (None, None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(format!(
            "usage of {of}: partly missing"
        ))),
    }
}

fn limit_plus_one(limit: u32) -> i64 {
    // One more than the page, to learn whether there is a next page.
    i64::from(limit.clamp(1, MAX_PAGE)) + 1
}

/// Cuts a listing fetched with [`limit_plus_one`] down to the page and sets
/// the cursor when rows were left over.
fn page<T>(mut items: Vec<T>, limit: u32, id_of: impl Fn(&T) -> &str) -> Page<T> {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|t| id_of(t).to_owned())
    } else {
        None
    };
    Page { items, next }
}

/// A unique violation on insert means the id exists already.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(e),
    }
}

/// An insert refused by a constraint: a unique violation means the row
/// exists already (`dup` names it), a foreign key violation that the row it
/// belongs to does not (`parent` names that one).
fn insert_error(
    e: sqlx::Error,
    dup: impl FnOnce() -> String,
    parent: impl FnOnce() -> String,
) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound(parent()),
        _ => conflict(e, dup),
    }
}

#[async_trait]
impl MetaStore for SqliteMeta {
    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        tenants::get_setting(&self.pool, key).await
    }
    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        tenants::set_setting(&self.pool, key, value).await
    }

    async fn create_tenant(&self, name: &str, quotas: Quotas) -> Result<Tenant> {
        tenants::create(&self.pool, name, quotas).await
    }
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        tenants::get(&self.pool, id).await
    }
    async fn list_tenants(&self, after: Option<&str>, limit: u32) -> Result<Page<Tenant>> {
        tenants::list(&self.pool, after, limit).await
    }
    async fn set_tenant_disabled(&self, id: &TenantId, disabled: bool) -> Result<bool> {
        tenants::set_disabled(&self.pool, id, disabled).await
    }
    async fn set_tenant_quotas(&self, id: &TenantId, quotas: Quotas) -> Result<bool> {
        tenants::set_quotas(&self.pool, id, quotas).await
    }
    async fn delete_tenant(&self, id: &TenantId) -> Result<bool> {
        tenants::delete(&self.pool, id).await
    }

    async fn create_key(&self, tenant: &TenantId, name: &str, secret_hash: &str) -> Result<ApiKey> {
        tenants::create_key(&self.pool, tenant, name, secret_hash).await
    }
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>> {
        tenants::list_keys(&self.pool, tenant).await
    }
    async fn revoke_key(&self, tenant: &TenantId, key: &KeyId) -> Result<bool> {
        tenants::revoke_key(&self.pool, tenant, key).await
    }
    async fn find_key(&self, key: &KeyId) -> Result<Option<(ApiKey, String)>> {
        tenants::find_key(&self.pool, key).await
    }

    async fn insert_file(&self, file: &FileMeta) -> Result<()> {
        files::insert(&self.pool, file).await
    }
    async fn get_file(&self, tenant: &TenantId, id: &FileId) -> Result<Option<FileMeta>> {
        files::get(&self.pool, tenant, id).await
    }
    async fn list_files(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<FileMeta>> {
        files::list(&self.pool, tenant, after, limit).await
    }
    async fn delete_file(&self, tenant: &TenantId, id: &FileId) -> Result<bool> {
        files::delete(&self.pool, tenant, id).await
    }
    async fn storage_bytes(&self, tenant: &TenantId) -> Result<u64> {
        reservations::in_use(&self.pool, tenant).await
    }
    async fn reserve_storage(&self, tenant: &TenantId, id: &str, bytes: u64) -> Result<()> {
        reservations::reserve(&self.pool, tenant, id, bytes).await
    }
    async fn release_storage(&self, tenant: &TenantId, id: &str) -> Result<()> {
        reservations::release(&self.pool, tenant, id).await
    }
    async fn clear_storage_reservations(&self, before: Millis) -> Result<u64> {
        reservations::clear_before(&self.pool, before).await
    }
    async fn object_referenced(
        &self,
        tenant: &TenantId,
        kind: ObjectKind,
        id: &str,
    ) -> Result<bool> {
        reservations::object_referenced(&self.pool, tenant, kind, id).await
    }
    async fn use_upload_nonce(&self, nonce: &str, expires_at: Millis) -> Result<bool> {
        files::use_upload_nonce(&self.pool, nonce, expires_at).await
    }

    async fn insert_sandbox(&self, sb: &SandboxRecord) -> Result<()> {
        sandboxes::insert(&self.pool, sb).await
    }
    async fn sandbox_tenant(&self, id: &SandboxId) -> Result<Option<TenantId>> {
        let t: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM sandboxes WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(t.map(TenantId::from_stored))
    }
    async fn get_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
    ) -> Result<Option<SandboxRecord>> {
        sandboxes::get(&self.pool, tenant, id).await
    }
    async fn list_sandboxes(
        &self,
        tenant: &TenantId,
        filter: &SandboxFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<SandboxRecord>> {
        sandboxes::list(&self.pool, tenant, filter, after, limit).await
    }
    async fn set_sandbox_expiry(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        expires_at: Millis,
    ) -> Result<bool> {
        sandboxes::set_expiry(&self.pool, tenant, id, expires_at).await
    }
    async fn end_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
        usage: Option<Usage>,
    ) -> Result<bool> {
        sandboxes::end(&self.pool, tenant, id, state, reason, usage).await
    }
    async fn resume_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        owner: &str,
        expires_at: Millis,
    ) -> Result<bool> {
        sandboxes::resume(&self.pool, tenant, id, owner, expires_at).await
    }
    async fn end_paused_sandbox(
        &self,
        tenant: &TenantId,
        id: &SandboxId,
        state: SandboxState,
        reason: &str,
    ) -> Result<bool> {
        sandboxes::end_paused(&self.pool, tenant, id, state, reason).await
    }
    async fn running_totals(&self, tenant: &TenantId) -> Result<(u32, u64)> {
        sandboxes::running_totals(&self.pool, tenant).await
    }
    async fn reap_foreign(&self, owner: &str) -> Result<Vec<SandboxRecord>> {
        sandboxes::reap_foreign(&self.pool, owner).await
    }
    async fn usage_between(&self, tenant: &TenantId, from: Millis, to: Millis) -> Result<UsageSum> {
        sandboxes::usage_between(&self.pool, tenant, from, to).await
    }

    async fn append_audit(&self, tenant: &TenantId, event: &AuditEvent) -> Result<AuditEntry> {
        audit::append(&self.pool, self.audit.as_deref(), tenant, event).await
    }
    async fn list_audit(
        &self,
        tenant: &TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        audit::list(&self.pool, tenant, after_seq, limit).await
    }
    async fn list_audit_about(&self, tenant: &TenantId, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        audit::about(&self.pool, tenant, q).await
    }
    async fn audit_tenants(&self) -> Result<Vec<TenantId>> {
        audit::tenants(&self.pool).await
    }

    async fn get_command_policy(&self, tenant: &TenantId) -> Result<Option<serde_json::Value>> {
        policies::get(&self.pool, tenant).await
    }
    async fn set_command_policy(
        &self,
        tenant: &TenantId,
        policy: Option<&serde_json::Value>,
    ) -> Result<()> {
        policies::set(&self.pool, tenant, policy).await
    }
    async fn create_schedule(&self, schedule: &ScheduleRecord, max: u32) -> Result<()> {
        schedules::create(&self.pool, schedule, max).await
    }
    async fn list_schedules(&self, tenant: &TenantId) -> Result<Vec<ScheduleRecord>> {
        schedules::list(&self.pool, tenant).await
    }
    async fn get_schedule(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
    ) -> Result<Option<ScheduleRecord>> {
        schedules::get(&self.pool, tenant, id).await
    }
    async fn delete_schedule(&self, tenant: &TenantId, id: &ScheduleId) -> Result<bool> {
        schedules::delete(&self.pool, tenant, id).await
    }
    async fn set_schedule_paused(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
        paused: bool,
        next_run_at: Millis,
    ) -> Result<bool> {
        schedules::set_paused(&self.pool, tenant, id, paused, next_run_at).await
    }
    async fn due_schedules(&self, now: Millis, limit: u32) -> Result<Vec<ScheduleRecord>> {
        schedules::due(&self.pool, now, limit).await
    }
    async fn advance_schedule(
        &self,
        id: &ScheduleId,
        expected: Millis,
        run: &ScheduleRun,
    ) -> Result<bool> {
        schedules::advance(&self.pool, id, expected, run).await
    }
    async fn begin_snapshot(&self, snapshot: &SnapshotRecord) -> Result<()> {
        snapshots::begin(&self.pool, snapshot).await
    }
    async fn hold_blob(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
        digest: &str,
        key: &BlobKey,
        size: u64,
    ) -> Result<BlobHold> {
        snapshots::hold_blob(&self.pool, tenant, id, digest, key, size).await
    }
    async fn pause_snapshot(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
    ) -> Result<Option<SnapshotRecord>> {
        snapshots::pause_of(&self.pool, tenant, sandbox).await
    }
    async fn hold_known_blob(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
        digest: &str,
    ) -> Result<Option<BlobKey>> {
        snapshots::hold_known_blob(&self.pool, tenant, id, digest).await
    }
    async fn rebase_snapshot(&self, tenant: &TenantId, id: &SnapshotId) -> Result<bool> {
        snapshots::rebase(&self.pool, tenant, id).await
    }
    async fn finish_snapshot(&self, snapshot: &SnapshotRecord) -> Result<bool> {
        snapshots::finish(&self.pool, snapshot).await
    }
    async fn list_snapshots(&self, tenant: &TenantId) -> Result<Vec<SnapshotRecord>> {
        snapshots::list(&self.pool, tenant).await
    }
    async fn get_snapshot(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
    ) -> Result<Option<SnapshotRecord>> {
        snapshots::get(&self.pool, tenant, "id", id.as_str()).await
    }
    async fn get_snapshot_by_name(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<SnapshotRecord>> {
        snapshots::get(&self.pool, tenant, "name", name).await
    }
    async fn delete_snapshot(
        &self,
        tenant: &TenantId,
        id: &SnapshotId,
    ) -> Result<Option<Vec<BlobKey>>> {
        snapshots::delete(&self.pool, tenant, id).await
    }
    async fn unfinished_snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        snapshots::unfinished(&self.pool).await
    }
    async fn put_image(&self, image: &ImageRecord) -> Result<()> {
        images::put(&self.pool, image).await
    }
    async fn get_image(&self, tenant: &TenantId, name: &str) -> Result<Option<ImageRecord>> {
        images::get(&self.pool, tenant, name).await
    }
    async fn list_images(&self, tenant: &TenantId) -> Result<Vec<ImageRecord>> {
        images::list(&self.pool, tenant).await
    }
    async fn delete_image(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        images::delete(&self.pool, tenant, name).await
    }
    async fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        images::put_layer(&self.pool, layer).await
    }
    async fn get_layer(&self, tenant: &TenantId, key: &str) -> Result<Option<LayerRecord>> {
        images::get_layer(&self.pool, tenant, key).await
    }
    async fn unused_layers(&self, tenant: &TenantId) -> Result<Vec<LayerRecord>> {
        images::unused_layers(&self.pool, tenant).await
    }
    async fn delete_layer(&self, tenant: &TenantId, key: &str) -> Result<bool> {
        images::delete_layer(&self.pool, tenant, key).await
    }
    async fn create_volume(&self, volume: &VolumeRecord) -> Result<()> {
        volumes::create(&self.pool, volume).await
    }
    async fn list_volumes(&self, tenant: &TenantId) -> Result<Vec<VolumeRecord>> {
        volumes::list(&self.pool, tenant).await
    }
    async fn get_volume(&self, tenant: &TenantId, id: &VolumeId) -> Result<Option<VolumeRecord>> {
        volumes::get(&self.pool, tenant, id).await
    }
    async fn get_volume_by_name(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<VolumeRecord>> {
        volumes::get_by_name(&self.pool, tenant, name).await
    }
    async fn delete_volume(&self, tenant: &TenantId, id: &VolumeId) -> Result<bool> {
        volumes::delete(&self.pool, tenant, id).await
    }
    async fn all_volumes(&self) -> Result<Vec<VolumeRecord>> {
        volumes::all(&self.pool).await
    }
    async fn put_secret(&self, secret: &SecretRecord, replace: bool) -> Result<SecretMeta> {
        secrets::put(&self.pool, secret, replace).await
    }
    async fn list_secrets(&self, tenant: &TenantId) -> Result<Vec<SecretMeta>> {
        secrets::list(&self.pool, tenant).await
    }
    async fn get_secret(&self, tenant: &TenantId, name: &str) -> Result<Option<SecretRecord>> {
        secrets::get(&self.pool, tenant, name).await
    }
    async fn delete_secret(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        secrets::delete(&self.pool, tenant, name).await
    }
}

#[async_trait]
impl JobStore for SqliteMeta {
    async fn submit_review(&self, review: &ReviewRecord) -> Result<(ReviewRecord, bool)> {
        jobs::submit(&self.pool, review).await
    }
    async fn get_review(&self, tenant: &TenantId, id: &ReviewId) -> Result<Option<ReviewRecord>> {
        jobs::get(&self.pool, tenant, id).await
    }
    async fn list_reviews(
        &self,
        tenant: &TenantId,
        filter: &ReviewFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<ReviewRecord>> {
        jobs::list(&self.pool, tenant, filter, after, limit).await
    }

    async fn claim_review(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        per_tenant: u32,
    ) -> Result<Option<ReviewRecord>> {
        leases::claim(&self.pool, owner, now, lease_until, per_tenant).await
    }
    async fn renew_lease(&self, id: &ReviewId, owner: &str, lease_until: Millis) -> Result<bool> {
        leases::renew(&self.pool, id, owner, lease_until).await
    }
    async fn finish_review(&self, id: &ReviewId, owner: &str, end: &ReviewEnd) -> Result<bool> {
        leases::finish(&self.pool, id, owner, end).await
    }
    async fn requeue_review(
        &self,
        id: &ReviewId,
        owner: &str,
        not_before: Millis,
        error: &str,
    ) -> Result<bool> {
        leases::requeue(&self.pool, id, owner, not_before, error).await
    }
    async fn defer_review(
        &self,
        id: &ReviewId,
        owner: &str,
        not_before: Millis,
        why: &str,
    ) -> Result<bool> {
        leases::defer(&self.pool, id, owner, not_before, why).await
    }
    async fn cancel_review(
        &self,
        tenant: &TenantId,
        id: &ReviewId,
    ) -> Result<Option<ReviewRecord>> {
        jobs::cancel(&self.pool, tenant, id).await
    }
    async fn cancel_requested(&self, id: &ReviewId) -> Result<bool> {
        jobs::cancel_requested(&self.pool, id).await
    }
    async fn review_counts(&self, tenant: &TenantId) -> Result<(u32, u32)> {
        jobs::counts(&self.pool, tenant).await
    }

    async fn insert_output(&self, output: &OutputRecord) -> Result<()> {
        outputs::insert(&self.pool, output).await
    }
    async fn list_outputs(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
    ) -> Result<Vec<OutputRecord>> {
        outputs::list(&self.pool, tenant, review).await
    }
    async fn get_output(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
        path: &str,
    ) -> Result<Option<OutputRecord>> {
        outputs::get(&self.pool, tenant, review, path).await
    }
    async fn clear_outputs(&self, tenant: &TenantId, review: &ReviewId) -> Result<Vec<OutputId>> {
        outputs::clear(&self.pool, tenant, review).await
    }
    async fn delete_outputs(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
        now: Millis,
    ) -> Result<OutputsDeleted> {
        outputs::delete_all(&self.pool, tenant, review, now).await
    }

    async fn webhook_secret(&self, tenant: &TenantId) -> Result<String> {
        deliveries::webhook_secret(&self.pool, tenant).await
    }
    async fn insert_delivery(&self, d: &DeliveryRecord) -> Result<()> {
        deliveries::insert(&self.pool, d).await
    }
    async fn due_deliveries(&self, now: Millis, limit: u32) -> Result<Vec<DeliveryRecord>> {
        deliveries::due(&self.pool, now, limit).await
    }
    async fn update_delivery(&self, d: &DeliveryRecord) -> Result<()> {
        deliveries::update(&self.pool, d).await
    }
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
    ) -> Result<Vec<DeliveryRecord>> {
        deliveries::list(&self.pool, tenant, review).await
    }
}

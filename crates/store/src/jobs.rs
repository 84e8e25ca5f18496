//! Review jobs: a queue in the metadata database, claimed with leases so
//! that several nodes can share it, plus the jobs' outputs and webhook
//! deliveries.
//!
//! A job is `pending` until a worker claims it (`running`, with a lease the
//! worker renews). A lease that expires (the node died) makes the job
//! claimable again; every claim counts as an attempt. Terminal states are
//! `succeeded`, `failed`, `cancelled` and `timed_out`.

pub use crate::ids::{DeliveryId, OutputId, ReviewId};
use crate::{FileId, Millis, Result, TenantId, Usage};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

impl ReviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Running => "running",
            ReviewStatus::Succeeded => "succeeded",
            ReviewStatus::Failed => "failed",
            ReviewStatus::Cancelled => "cancelled",
            ReviewStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewStatus> {
        Some(match s {
            "pending" => ReviewStatus::Pending,
            "running" => ReviewStatus::Running,
            "succeeded" => ReviewStatus::Succeeded,
            "failed" => ReviewStatus::Failed,
            "cancelled" => ReviewStatus::Cancelled,
            "timed_out" => ReviewStatus::TimedOut,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, ReviewStatus::Pending | ReviewStatus::Running)
    }
}

/// One review job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub id: ReviewId,
    pub tenant_id: TenantId,
    pub status: ReviewStatus,
    /// The accepted request (files, image, command, env names, limits,
    /// timeout, network, webhook_url, retry policy) as JSON; never secret
    /// values.
    pub spec: serde_json::Value,
    pub files: Vec<FileId>,
    pub idempotency_key: Option<String>,
    pub webhook_url: Option<String>,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// Claims so far (1 on the first run).
    pub attempts: u32,
    pub max_attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why it failed, for failures that are not the command's own exit.
    pub error: Option<String>,
    pub usage: Option<Usage>,
    /// Set by a cancel request while the job runs; the worker acts on it.
    pub cancel_requested: bool,
    /// The worker holding the job, and until when.
    pub lease_owner: Option<String>,
    pub lease_expires: Option<Millis>,
    /// Not claimable before this time (retry backoff).
    pub not_before: Millis,
    /// Its log's size once stored, and what was cut to keep it within the
    /// operator's caps (set when it ends).
    pub storage: JobStorage,
    /// When its tenant deleted its outputs and stored log.
    pub outputs_deleted_at: Option<Millis>,
}

/// What an ended job keeps in the object store besides its outputs' rows,
/// and what was cut: both count for the tenant (its storage quota) and tell
/// the reader that something is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStorage {
    /// Bytes of the stored log.
    pub log_bytes: u64,
    /// The log reached the operator's cap; later output was dropped.
    pub log_truncated: bool,
    /// Some of `/output` was not kept (over the byte, file-count or storage
    /// limits; the manifest lists what and why).
    pub outputs_truncated: bool,
}

/// What deleting a job's outputs did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputsDeleted {
    /// No such job of this tenant.
    NoJob,
    /// The job has not ended: its outputs are not all made yet.
    NotEnded(ReviewStatus),
    /// Removed from the records: the outputs' objects to delete (the log's
    /// is stored under the job's id, if it was stored) and the bytes given
    /// back. Deleting again is harmless and gives back nothing more.
    Deleted { outputs: Vec<OutputId>, bytes: u64 },
}

/// How a job ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewEnd {
    pub status: ReviewStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub usage: Option<Usage>,
    pub storage: JobStorage,
}

/// One file a job left in `/output`, stored as an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub review_id: ReviewId,
    pub tenant_id: TenantId,
    /// Relative path under `/output` (checked names, `/`-separated).
    pub path: String,
    pub object_id: OutputId,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Gave up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        self != DeliveryStatus::Pending
    }
}

/// One webhook notification and its delivery attempts so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub review_id: ReviewId,
    pub url: String,
    /// The JSON body sent (the same bytes every attempt, so the signature
    /// stays valid).
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Millis,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
}

/// Filters for listing reviews.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub status: Option<ReviewStatus>,
}

/// The queue and its satellites. Tenant-owned rows are addressed with their
/// tenant's id, as in [`crate::MetaStore`]; the worker-side calls (claim,
/// renew, finish, requeue) address a job by id and lease owner.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts a new pending job; with an idempotency key that the tenant
    /// already used, inserts nothing and returns the first job instead.
    /// The bool is true when this call created the job.
    async fn submit_review(&self, review: &ReviewRecord) -> Result<(ReviewRecord, bool)>;
    async fn get_review(&self, tenant: &TenantId, id: &ReviewId) -> Result<Option<ReviewRecord>>;
    /// Newest first; cursor = the last id seen.
    async fn list_reviews(
        &self,
        tenant: &TenantId,
        filter: &ReviewFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<crate::Page<ReviewRecord>>;

    /// Claims the next job for `owner` until `lease_until`, atomically:
    /// a pending job whose `not_before` has passed, or a running job whose
    /// lease expired. Fair between tenants: among tenants with fewer than
    /// `per_tenant` jobs under a live lease, the one with the fewest goes
    /// first, then the oldest job. Increments `attempts`, sets
    /// `started_at` on the first claim.
    async fn claim_review(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        per_tenant: u32,
    ) -> Result<Option<ReviewRecord>>;
    /// Extends the lease; false if `owner` no longer holds it.
    async fn renew_lease(&self, id: &ReviewId, owner: &str, lease_until: Millis) -> Result<bool>;
    /// Terminal state; false if `owner` no longer holds the job.
    async fn finish_review(&self, id: &ReviewId, owner: &str, end: &ReviewEnd) -> Result<bool>;
    /// Back to pending, claimable from `not_before` (retry after a failure
    /// of Warden's own); false if `owner` no longer holds the job.
    async fn requeue_review(
        &self,
        id: &ReviewId,
        owner: &str,
        not_before: Millis,
        error: &str,
    ) -> Result<bool>;
    /// A pending job becomes `cancelled` at once; a running one gets
    /// `cancel_requested`. Returns the job after the change (None: no such
    /// job of this tenant).
    async fn cancel_review(&self, tenant: &TenantId, id: &ReviewId)
        -> Result<Option<ReviewRecord>>;
    /// Back to pending without counting the claim as an attempt: the job
    /// could not start for a reason that passes (its tenant's quotas are
    /// taken by other work), so it waits rather than fails. False if
    /// `owner` no longer holds the job.
    async fn defer_review(
        &self,
        id: &ReviewId,
        owner: &str,
        not_before: Millis,
        why: &str,
    ) -> Result<bool>;
    /// Whether a cancel was requested for a running job (workers poll it).
    async fn cancel_requested(&self, id: &ReviewId) -> Result<bool>;
    /// Jobs in each state for a tenant (pending, running), for quotas.
    async fn review_counts(&self, tenant: &TenantId) -> Result<(u32, u32)>;

    async fn insert_output(&self, output: &OutputRecord) -> Result<()>;
    /// In path order.
    async fn list_outputs(&self, tenant: &TenantId, review: &ReviewId)
        -> Result<Vec<OutputRecord>>;
    async fn get_output(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
        path: &str,
    ) -> Result<Option<OutputRecord>>;
    /// Removes a job's output rows (before a retry re-exports); returns the
    /// object ids so the caller can delete the objects.
    async fn clear_outputs(&self, tenant: &TenantId, review: &ReviewId) -> Result<Vec<OutputId>>;
    /// A tenant deletes an ended job's outputs and stored log, in one
    /// transaction: the rows go, the log no longer counts, the job says
    /// when. The caller deletes the objects named in the answer (should it
    /// die first, the start-up sweep does: nothing references them now).
    async fn delete_outputs(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
        now: Millis,
    ) -> Result<OutputsDeleted>;

    /// The tenant's webhook signing secret, created on first use.
    async fn webhook_secret(&self, tenant: &TenantId) -> Result<String>;
    async fn insert_delivery(&self, d: &DeliveryRecord) -> Result<()>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: Millis, limit: u32) -> Result<Vec<DeliveryRecord>>;
    /// Records an attempt's outcome (status, attempts, codes, next time).
    async fn update_delivery(&self, d: &DeliveryRecord) -> Result<()>;
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        review: &ReviewId,
    ) -> Result<Vec<DeliveryRecord>>;
}

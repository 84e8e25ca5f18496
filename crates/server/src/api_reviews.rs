//! JSON shapes of the review-jobs API.

use crate::api::{time, SandboxLimits, Usage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use warden_store::jobs::{DeliveryRecord, OutputRecord, ReviewRecord};

/// `POST /v1/reviews`.
#[derive(Deserialize, Serialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct SubmitReview {
    /// File ids, shown read-only at `/input/<name>`.
    #[serde(default)]
    pub files: Vec<String>,
    /// `host` (default) or a built image such as `python-data`.
    pub image: Option<String>,
    /// argv; give this or `shell`.
    pub command: Option<Vec<String>>,
    pub shell: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of the tenant's secrets to pass as environment variables (of
    /// the same names). The job keeps names only; values are decrypted when
    /// it starts and masked as `***` in its logs.
    #[serde(default)]
    pub secrets: Vec<String>,
    pub limits: Option<SandboxLimits>,
    /// Wall-clock limit of the command; default 3600, at most 86400.
    pub timeout_secs: Option<u64>,
    /// `{"mode": "none"}` (default) or an allowlist, as for sandboxes; the
    /// job's attempts are logged at `GET /v1/reviews/{id}/egress`.
    pub network: Option<crate::api::Network>,
    pub webhook_url: Option<String>,
    /// A second submit with the same key returns the first job.
    pub idempotency_key: Option<String>,
    /// Run again (up to the server's attempt limit) when the command exits
    /// non-zero. Failures of Warden's own before the command ran are always
    /// retried; after it ran, the job fails with its exit code kept.
    #[serde(default)]
    pub retry_on_failure: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `native` (default) or `gvisor`, as for sandboxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// The tenant's volumes to mount in the job's sandbox, as for
    /// sandboxes (each by id or name; checked at submit, mounted at each
    /// attempt: one deleted in between fails the job). What the job
    /// writes there outlives it, unlike `/output`, which it exports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<crate::api_volumes::VolumeMount>,
}

impl SubmitReview {
    /// The command the job runs (`command` wins if a stored spec had both).
    pub fn to_command(&self) -> Option<warden_protocol::Command> {
        use warden_protocol::Command;
        match (&self.command, &self.shell) {
            (Some(argv), _) => Some(Command::Argv(argv.clone())),
            (None, Some(line)) => Some(Command::Shell(line.clone())),
            (None, None) => None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReviewOutput {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl From<OutputRecord> for ReviewOutput {
    fn from(o: OutputRecord) -> Self {
        ReviewOutput {
            path: o.path,
            size: o.size,
            sha256: o.sha256,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Review {
    pub id: String,
    /// pending | running | succeeded | failed | cancelled | timed_out
    pub status: String,
    pub image: String,
    /// `native` | `gvisor`
    pub isolation: String,
    pub command: Option<Vec<String>>,
    pub shell: Option<String>,
    pub files: Vec<String>,
    /// Names of the secrets it is given.
    pub secrets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub webhook_url: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub usage: Option<Usage>,
    /// Listed once the job has ended.
    pub outputs: Vec<ReviewOutput>,
    /// Some of `/output` was not kept: over the server's caps on a job's
    /// outputs (bytes by apparent size, files) or the tenant's storage
    /// left. The manifest's `skipped_outputs` says what and why.
    pub outputs_truncated: bool,
    /// The log reached the server's cap; later output was dropped.
    pub log_truncated: bool,
    /// Size of the stored log (counted in the tenant's storage).
    pub log_bytes: u64,
    /// When the tenant deleted the job's outputs and log
    /// (`DELETE /v1/reviews/{id}/outputs`).
    pub outputs_deleted_at: Option<String>,
}

pub fn review(r: ReviewRecord, outputs: Vec<OutputRecord>) -> Review {
    let spec: SubmitReview = serde_json::from_value(r.spec).unwrap_or_default();
    Review {
        id: r.id.to_string(),
        status: r.status.as_str().into(),
        image: spec.image.unwrap_or_else(|| "host".into()),
        isolation: spec.isolation.unwrap_or_else(|| "native".into()),
        command: spec.command,
        shell: spec.shell,
        files: spec.files,
        secrets: spec.secrets,
        labels: spec.labels,
        webhook_url: r.webhook_url,
        idempotency_key: r.idempotency_key,
        created_at: time(r.created_at),
        started_at: r.started_at.map(time),
        finished_at: r.finished_at.map(time),
        attempts: r.attempts,
        exit_code: r.exit_code,
        signal: r.signal,
        error: r.error,
        cancel_requested: r.cancel_requested,
        usage: r.usage.map(|u| Usage {
            cpu_seconds: u.cpu_seconds,
            peak_memory_bytes: u.peak_memory_bytes,
            wall_seconds: u.wall_seconds,
        }),
        outputs: outputs.into_iter().map(Into::into).collect(),
        outputs_truncated: r.storage.outputs_truncated,
        log_truncated: r.storage.log_truncated,
        log_bytes: r.storage.log_bytes,
        outputs_deleted_at: r.outputs_deleted_at.map(time),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub url: String,
    /// pending | delivered | failed
    pub status: String,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl From<DeliveryRecord> for Delivery {
    fn from(d: DeliveryRecord) -> Self {
        let pending = d.status == warden_store::jobs::DeliveryStatus::Pending;
        Delivery {
            id: d.id.to_string(),
            url: d.url,
            status: d.status.as_str().into(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: pending.then(|| time(d.next_attempt_at)),
            created_at: time(d.created_at),
            delivered_at: d.delivered_at.map(time),
        }
    }
}

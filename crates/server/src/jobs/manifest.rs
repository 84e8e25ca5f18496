//! The end of an attempt whose command ran: `/output` exported within the
//! limits (retried as a whole, since an export can be repeated without
//! running anything again), and the provenance manifest.

use super::outputs::{self, Collected};
use crate::api_reviews::SubmitReview;
use crate::manager::Live;
use crate::state::Shared;
use serde_json::{json, Value};
use warden_runtime::export::ExportLimits;
use warden_store::jobs::{ReviewEnd, ReviewRecord};
use warden_store::{FileMeta, TenantStore, Usage};

/// Exports tried before the job fails with the export's error.
const EXPORT_TRIES: usize = 3;

/// Exports `/output` into the job's outputs, within the operator's caps,
/// the sandbox's disk and the tenant's storage left. Each failed try leaves
/// nothing behind; the error of the last one is returned.
pub async fn export(
    st: &Shared,
    store: &TenantStore,
    job: &ReviewRecord,
    live: &Live,
    disk: u64,
) -> Result<Collected, String> {
    let caps = &st.cfg.limits;
    let scratch = st.work_dir().join(format!("{}-out", job.id));
    let mut last = String::new();
    for attempt in 1..=EXPORT_TRIES {
        // What an earlier attempt (or try) stored goes first, so it is not
        // counted against the storage left.
        outputs::clear(store, st.jobs.as_ref(), &job.id).await;
        let left = match storage_left(store).await {
            Ok(l) => l,
            Err(e) => {
                last = format!("reading the tenant's storage use: {e}");
                continue;
            }
        };
        let limits = ExportLimits {
            max_bytes: disk.min(caps.max_job_output_bytes).min(left),
            max_entries: caps.max_job_output_files,
        };
        match outputs::collect(
            &live.client,
            store,
            st.jobs.as_ref(),
            &job.id,
            &scratch,
            limits,
        )
        .await
        {
            Ok(mut c) => {
                c.storage_left = left;
                return Ok(c);
            }
            Err(e) => {
                last = format!("exporting /output failed: {e:#}");
                tracing::warn!(review = %job.id, "export try {attempt}: {last}");
            }
        }
    }
    Err(last)
}

async fn storage_left(store: &TenantStore) -> anyhow::Result<u64> {
    let tenant = store
        .tenant()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the tenant is gone"))?;
    let used = store.storage_bytes().await?;
    Ok(tenant.quotas.max_storage_bytes.saturating_sub(used))
}

/// Everything the manifest tells.
pub struct Facts<'a> {
    pub job: &'a ReviewRecord,
    pub spec: &'a SubmitReview,
    pub identity: &'a crate::images::ImageIdentity,
    pub limits: &'a crate::api::SandboxLimits,
    pub timeout: u64,
    pub network: &'a crate::api::Network,
    pub files: &'a [FileMeta],
    pub collected: &'a Collected,
    pub export_error: Option<&'a str>,
    pub end: &'a ReviewEnd,
    pub exit: &'a warden_protocol::ExitStatus,
    pub usage: &'a Usage,
    pub started_at: warden_store::Millis,
}

pub fn build(f: Facts<'_>) -> Value {
    let c = f.collected;
    let sandbox_path = |stored: &str| {
        c.renamed
            .iter()
            .find(|(_, s)| s == stored)
            .map(|(from, _)| from.clone())
    };
    let outputs: Vec<Value> = c
        .stored
        .iter()
        .map(|o| {
            let mut v = json!({"path": o.path, "size": o.size, "sha256": o.sha256});
            if let Some(from) = sandbox_path(&o.path) {
                v["sandbox_path"] = json!(from);
            }
            v
        })
        .collect();
    json!({
        "warden_version": env!("CARGO_PKG_VERSION"),
        "review_id": f.job.id,
        "tenant_id": f.job.tenant_id,
        "image": f.identity,
        "command": f.spec.command,
        "shell": f.spec.shell,
        "env_names": f.spec.env.keys().collect::<Vec<_>>(),
        "secret_names": f.spec.secrets,
        "limits": f.limits,
        "timeout_secs": f.timeout,
        "network": f.network,
        "inputs": f.files.iter().map(|x| json!({"name": x.name, "file_id": x.id, "size": x.size, "sha256": x.sha256})).collect::<Vec<_>>(),
        "outputs": outputs,
        "skipped_outputs": c.report.skipped.iter().map(|s| json!({"path": s.path, "reason": s.reason})).collect::<Vec<_>>(),
        "skipped_outputs_unlisted": c.report.skipped_unlisted,
        "outputs_truncated": c.truncated(),
        "output_limits": {
            "max_bytes": c.max_bytes,
            "max_files": c.max_entries,
            "storage_left_bytes": c.storage_left,
        },
        "export_error": f.export_error,
        "log_truncated": f.end.storage.log_truncated,
        "exit": {"status": f.end.status.as_str(), "exit_code": f.exit.code, "signal": f.exit.signal, "timed_out": f.exit.timed_out, "error": f.end.error},
        "usage": f.usage,
        "attempt": f.job.attempts,
        "times": {
            "submitted_at": crate::api::time(f.job.created_at),
            "started_at": crate::api::time(f.started_at),
            "finished_at": crate::api::time(warden_store::now_ms()),
        },
    })
}

//! The end of a review job: its log stored, its end recorded, audited, its
//! webhook queued.

use super::logs;
use crate::api_reviews;
use crate::service::audit::{Action, Audit};
use crate::state::Shared;
use serde_json::json;
use warden_store::jobs::{ReviewEnd, ReviewRecord};
use warden_store::{ObjectKind, TenantStore};

/// Records the end, stores the log, audits, queues the webhook.
pub(super) async fn finish(
    st: &Shared,
    store: &TenantStore,
    job: &ReviewRecord,
    mut review_end: ReviewEnd,
) {
    let owner = &st.sandboxes.owner;
    let path = logs::path(&st.logs_dir(), job.id.as_str());
    if let Ok(file) = tokio::fs::File::open(&path).await {
        let stream = tokio_util::io::ReaderStream::new(file);
        match store
            .objects()
            .put_stream(ObjectKind::Logs, job.id.as_str(), stream, u64::MAX)
            .await
        {
            Ok(put) => {
                // Counted in the tenant's storage from now on.
                review_end.storage.log_bytes = put.size;
                let _ = tokio::fs::remove_file(&path).await;
            }
            Err(e) => tracing::error!(review = %job.id, "storing the log: {e}"),
        }
    }
    match st.jobs.finish_review(&job.id, owner, &review_end).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(review = %job.id, "recording the end: {e}");
            return;
        }
    }
    let _ = st
        .audit(
            &job.tenant_id,
            Audit {
                actor: "system",
                action: Action::ReviewFinish,
                target: job.id.as_str(),
                outcome: review_end.status.as_str(),
            },
        )
        .await;
    let Some(url) = &job.webhook_url else { return };
    let record = match st.jobs.get_review(&job.tenant_id, &job.id).await {
        Ok(Some(r)) => r,
        _ => return,
    };
    let outs = st
        .jobs
        .list_outputs(&job.tenant_id, &job.id)
        .await
        .unwrap_or_default();
    let body = json!({"event": "review.finished", "review": api_reviews::review(record, outs)});
    if let Err(e) = crate::webhooks::enqueue(
        st.jobs.as_ref(),
        &job.tenant_id,
        &job.id,
        url,
        body.to_string(),
    )
    .await
    {
        tracing::error!(review = %job.id, "queueing the webhook: {e}");
    }
}

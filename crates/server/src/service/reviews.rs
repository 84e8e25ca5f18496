//! Review jobs, the tenant's side: submit (everything that can be wrong is
//! refused here, not when the job runs), find, list, cancel. The queue's
//! worker (`crate::jobs`) runs them.

use crate::api_reviews::SubmitReview;
use crate::auth::Caller;
use crate::service::audit::{self, Action, Audit};
use crate::service::sandboxes::{self, Shape};
use crate::service::{Error, Result};
use crate::state::AppState;
use warden_store::jobs::{ReviewFilter, ReviewRecord, ReviewStatus};
use warden_store::{now_ms, FileId, Page, ReviewId};

const MAX_TIMEOUT_SECS: u64 = 86_400;

/// A review id from a path: one that does not parse names no review.
pub fn review_id(id: &str) -> Result<ReviewId> {
    ReviewId::parse(id).ok_or_else(|| Error::not_found("review"))
}

/// The caller's review `id` (another tenant's is not found).
pub async fn find(st: &AppState, caller: &Caller, id: &str) -> Result<ReviewRecord> {
    st.jobs
        .get_review(caller.store.tenant_id(), &review_id(id)?)
        .await?
        .ok_or_else(|| Error::not_found("review"))
}

/// Everything about a submit that can be wrong, refused now rather than
/// when the job runs; the input files' ids on success.
pub(crate) async fn validate(
    st: &AppState,
    caller: &Caller,
    req: &SubmitReview,
) -> Result<Vec<FileId>> {
    match (&req.command, &req.shell) {
        (Some(a), None) if !a.is_empty() => {}
        (None, Some(_)) => {}
        _ => {
            return Err(Error::invalid(
                "give exactly one of `command` (a non-empty argv) or `shell`",
            ))
        }
    }
    if let Some(t) = req.timeout_secs {
        if !(1..=MAX_TIMEOUT_SECS).contains(&t) {
            return Err(Error::invalid(format!(
                "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
            )));
        }
    }
    for k in req.env.keys() {
        warden_spec::check_env_name(k).map_err(|e| Error::invalid(e.to_string()))?;
    }
    // Each named secret must exist and decrypt now; the job keeps names and
    // decrypts again when it starts (the values are dropped here).
    crate::secrets::resolve(
        st.vault.as_ref(),
        &caller.store,
        &req.secrets,
        req.env.keys(),
    )
    .await?;
    // The spec the job will run with, made as its worker will make it.
    let image = req.image.clone().unwrap_or_else(|| "host".into());
    let asked_limits = req.limits.clone().unwrap_or_default();
    let shape = Shape {
        image: &image,
        isolation: req.isolation.as_deref(),
        limits: &asked_limits,
        env: &req.env,
        network: req.network.as_ref(),
        workdir: None,
        timeout_secs: req.timeout_secs.unwrap_or(3600),
        user: None,
        writable_root: false,
    };
    let resolved = crate::service::images::resolve(st, &caller.store, &image).await?;
    let mut planned = sandboxes::spec_for(&shape, &st.cfg, resolved)?;
    crate::service::volumes::check_mounts(&caller.store, &req.volumes).await?;
    planned
        .spec
        .mounts
        .extend(crate::service::volumes::planned_mounts(&req.volumes));
    planned
        .spec
        .validate()
        .map_err(|e| Error::invalid(e.to_string()))?;
    st.sandboxes.check_isolation(planned.spec.isolation).await?;
    // A job counts against the same quotas as sandboxes; one that could
    // not run even alone is refused now rather than left waiting.
    let tenant = caller
        .store
        .tenant()
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    let footprint = crate::manager::Footprint::of(&planned.spec);
    crate::manager::quota::check_alone(&tenant.quotas, footprint)?;
    sandboxes::check_labels(&req.labels)?;
    if let Some(k) = &req.idempotency_key {
        if k.is_empty() || k.len() > 128 || k.chars().any(char::is_control) {
            return Err(Error::invalid(
                "idempotency_key is 1-128 printable characters",
            ));
        }
    }
    if let Some(url) = &req.webhook_url {
        crate::netguard::parse_url(url).map_err(|e| Error::invalid(format!("webhook_url: {e}")))?;
        if !st.cfg.webhooks.allow_private {
            if let Err(e) = crate::netguard::resolve(url, false).await {
                if matches!(e, crate::netguard::TargetError::NotPublic { .. }) {
                    return Err(Error::invalid(format!("webhook_url: {e}")));
                }
            }
        }
    }
    let files = sandboxes::input_files(&caller.store, &req.files).await?;
    Ok(files.into_iter().map(|f| f.id).collect())
}

/// Queues `req` as a review job after checking it and the tenant's command
/// policy. Returns the job and whether it is new (`false`: the job first
/// submitted with the same idempotency key).
pub async fn submit(
    st: &AppState,
    caller: &Caller,
    req: &SubmitReview,
) -> Result<(ReviewRecord, bool)> {
    if st.draining() {
        return Err(Error::ShuttingDown("the server is shutting down".into()));
    }
    let files = validate(st, caller, req).await?;
    let tenant = caller.store.tenant_id();
    crate::command_policy::enforce_review(st, tenant, caller.actor(), None, req).await?;
    let record = ReviewRecord {
        id: ReviewId::generate(),
        tenant_id: tenant.clone(),
        status: ReviewStatus::Pending,
        files,
        idempotency_key: req.idempotency_key.clone(),
        webhook_url: req.webhook_url.clone(),
        created_at: now_ms(),
        started_at: None,
        finished_at: None,
        attempts: 0,
        max_attempts: st.cfg.jobs.max_attempts.max(1),
        exit_code: None,
        signal: None,
        error: None,
        usage: None,
        cancel_requested: false,
        lease_owner: None,
        lease_expires: None,
        not_before: 0,
        storage: Default::default(),
        outputs_deleted_at: None,
        spec: serde_json::to_value(req).map_err(|e| Error::internal("encoding", e))?,
    };
    let (job, created) = st.jobs.submit_review(&record).await?;
    if !created {
        return Ok((job, false));
    }
    let entry = Audit {
        actor: caller.actor(),
        action: Action::ReviewSubmit,
        target: job.id.as_str(),
        outcome: "ok",
    };
    audit::append(st.meta.as_ref(), tenant, entry).await?;
    st.jobs_handle.wake.notify_one();
    Ok((job, true))
}

/// The caller's reviews, newest first, `status` (a name) only if given.
pub async fn list(
    st: &AppState,
    caller: &Caller,
    status: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<ReviewRecord>> {
    let status = match status {
        Some(s) => Some(
            ReviewStatus::parse(s)
                .ok_or_else(|| Error::invalid(format!("unknown status {s:?}")))?,
        ),
        None => None,
    };
    let filter = ReviewFilter { status };
    Ok(st
        .jobs
        .list_reviews(caller.store.tenant_id(), &filter, cursor, limit)
        .await?)
}

/// Cancels the caller's review `id`: a pending job ends now, a running one
/// is stopped by its worker.
pub async fn cancel(st: &AppState, caller: &Caller, id: &str) -> Result<ReviewRecord> {
    let id = review_id(id)?;
    let tenant = caller.store.tenant_id();
    let r = st
        .jobs
        .cancel_review(tenant, &id)
        .await?
        .ok_or_else(|| Error::not_found("review"))?;
    st.jobs_handle.cancel(&id);
    let entry = Audit {
        actor: caller.actor(),
        action: Action::ReviewCancel,
        target: id.as_str(),
        outcome: r.status.as_str(),
    };
    audit::append(st.meta.as_ref(), tenant, entry).await?;
    Ok(r)
}

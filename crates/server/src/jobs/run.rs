//! One attempt at one job: a fresh sandbox with the job's files at
//! `/input`, the command with its output logged as it comes, `/output`
//! exported into the tenant's outputs, the manifest, the sandbox destroyed,
//! the outcome recorded, the webhook queued.

use super::execute::{execute, Ran};
use super::finish::finish;
use super::logs::{self, LogWriter};
use super::outputs;
use crate::api_reviews::SubmitReview;
use crate::manager::SandboxLaunch;
use crate::secrets::SecretError;
use crate::service::audit::{Action, Audit};
use crate::state::Shared;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use warden_spec::SandboxSpec;
use warden_store::jobs::{ReviewEnd, ReviewRecord, ReviewStatus};
use warden_store::{now_ms, FileMeta, SandboxId, SandboxRecord, SandboxState};

/// Extra lifetime of a job's sandbox beyond the command's timeout, for the
/// export of `/output`.
const EXPORT_MARGIN_SECS: i64 = 300;

enum Outcome {
    /// The job ended (whatever way); record it.
    Done(ReviewEnd),
    /// A failure of Warden's own before the command ran (or a retry the
    /// job asked for): run again if attempts remain.
    Retry(String),
    /// It cannot start yet (its tenant's quotas are taken by other work):
    /// back to the queue without using an attempt.
    Defer(String),
    /// Another node holds the job now; leave it alone.
    LeaseLost,
    /// This server is shutting down: the job goes back to the queue, due
    /// at once, for the next server (or another node) to run.
    HandBack(String),
}

fn end(status: ReviewStatus, error: Option<String>) -> ReviewEnd {
    ReviewEnd {
        status,
        exit_code: None,
        signal: None,
        error,
        usage: None,
        storage: Default::default(),
    }
}

pub async fn run(st: Shared, job: ReviewRecord) {
    let id = job.id.clone();
    let owner = st.sandboxes.owner.clone();
    let cancel = st.jobs_handle.register(&id);
    let lease_lost = Arc::new(Notify::new());
    let renew = tokio::spawn(renew_loop(
        st.clone(),
        job.clone(),
        cancel.clone(),
        lease_lost.clone(),
    ));
    let outcome = match attempt(&st, &job, &cancel, &lease_lost).await {
        // A failure while the server drains is the shutdown's doing.
        Outcome::Retry(why) if st.draining() => Outcome::HandBack(why),
        o => o,
    };
    renew.abort();
    st.jobs_handle.unregister(&id);
    let store = st.tenant_store(job.tenant_id.clone());
    let recorded = match outcome {
        Outcome::LeaseLost => return,
        Outcome::HandBack(why) => {
            note(
                &st,
                &job,
                &format!("the server is shutting down ({why}): back to the queue"),
            )
            .await;
            match st.jobs.requeue_review(&id, &owner, now_ms(), &why).await {
                Ok(_) => {}
                Err(e) => tracing::error!(review = %id, "handing back: {e}"),
            }
            return;
        }
        Outcome::Defer(why) => {
            let wait = st.cfg.jobs.retry_backoff_ms.max(100);
            match st
                .jobs
                .defer_review(&id, &owner, now_ms() + wait as i64, &why)
                .await
            {
                Ok(_) => {}
                Err(e) => tracing::error!(review = %id, "deferring: {e}"),
            }
            return;
        }
        Outcome::Retry(why) if job.attempts < job.max_attempts => {
            let backoff = st
                .cfg
                .jobs
                .retry_backoff_ms
                .saturating_mul(1u64 << (job.attempts.saturating_sub(1)).min(16));
            note(
                &st,
                &job,
                &format!(
                    "attempt {} failed: {why}; retrying in {backoff} ms",
                    job.attempts
                ),
            )
            .await;
            match st
                .jobs
                .requeue_review(&id, &owner, now_ms() + backoff as i64, &why)
                .await
            {
                Ok(true) => {
                    // Logged by audit::append on failure; a job has no
                    // request to fail.
                    let _ = st
                        .audit(
                            &job.tenant_id,
                            Audit {
                                actor: "system",
                                action: Action::ReviewRetry,
                                target: id.as_str(),
                                outcome: &why,
                            },
                        )
                        .await;
                    return;
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(review = %id, "requeue: {e}");
                    return;
                }
            }
        }
        Outcome::Retry(why) => end(
            ReviewStatus::Failed,
            Some(format!("gave up after {} attempts: {why}", job.attempts)),
        ),
        Outcome::Done(end) => end,
    };
    finish(&st, &store, &job, recorded).await;
}

/// Renews the lease every third of its length and watches for a cancel
/// requested through another node.
async fn renew_loop(st: Shared, job: ReviewRecord, cancel: Arc<Notify>, lost: Arc<Notify>) {
    let lease = Duration::from_secs(st.cfg.jobs.lease_secs.max(1));
    let every = (lease / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        let until = now_ms() + lease.as_millis() as i64;
        match st
            .jobs
            .renew_lease(&job.id, &st.sandboxes.owner, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                lost.notify_one();
                return;
            }
            Err(e) => tracing::warn!(review = %job.id, "renewing the lease: {e}"),
        }
        if let Ok(true) = st.jobs.cancel_requested(&job.id).await {
            cancel.notify_one();
        }
    }
}

async fn note(st: &Shared, job: &ReviewRecord, text: &str) {
    let path = logs::path(&st.logs_dir(), job.id.as_str());
    if let Ok(mut w) = LogWriter::open(&path).await {
        let _ = w.note(text).await;
        let _ = w.flush().await;
    }
}

async fn attempt(st: &Shared, job: &ReviewRecord, cancel: &Notify, lost: &Notify) -> Outcome {
    if st.draining() {
        return Outcome::HandBack("claimed as the server began to stop".into());
    }
    let store = st.tenant_store(job.tenant_id.clone());
    // A job cancelled while its previous node died comes back with the
    // flag set: it ends here.
    if job.cancel_requested {
        return Outcome::Done(end(
            ReviewStatus::Cancelled,
            Some("cancelled while running".into()),
        ));
    }
    let spec: SubmitReview = match serde_json::from_value(job.spec.clone()) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Done(end(
                ReviewStatus::Failed,
                Some(format!("unreadable job spec: {e}")),
            ))
        }
    };
    // Room in the tenant's quotas first: a job that has to wait does no
    // other work (policy hook, secrets) each time it comes round.
    let mut probe = SandboxSpec::default();
    let limits = spec.limits.clone().unwrap_or_default();
    if crate::service::sandboxes::limits_spec(&limits, &mut probe, &st.cfg.limits).is_ok() {
        let footprint = crate::manager::Footprint::of(&probe);
        if let Err(crate::service::Error::Quota(m)) = st.sandboxes.room_for(&store, footprint).await
        {
            return Outcome::Defer(format!("waiting for room in the quotas: {m}"));
        }
    }
    // The policy again: it may have changed since the submit. A refusal
    // ends the job; a hook that failed is a failure of Warden's own.
    if let Err(e) = crate::command_policy::enforce_review(
        st,
        &job.tenant_id,
        "system",
        Some(job.id.as_str()),
        &spec,
    )
    .await
    {
        // Retried or failed by kind; the reason the review shows is what
        // the API would answer (a storage failure is logged, not quoted).
        let ours = e.is_ours();
        let why = e.into_message();
        return match ours {
            true => Outcome::Retry(why),
            false => Outcome::Done(end(ReviewStatus::Failed, Some(why))),
        };
    }
    // Inputs: a file deleted since the submit fails the job (no retry can
    // bring it back).
    let mut files: Vec<FileMeta> = Vec::new();
    for fid in &job.files {
        match store.get_file(fid).await {
            Ok(Some(f)) => files.push(f),
            Ok(None) => {
                return Outcome::Done(end(
                    ReviewStatus::Failed,
                    Some(format!(
                        "input file {fid} was deleted before the job started"
                    )),
                ))
            }
            Err(e) => return Outcome::Retry(format!("reading file metadata: {e}")),
        }
    }
    let image_name = spec.image.clone().unwrap_or_else(|| "host".into());
    // The same spec an interactive create makes (checked at submit, so a
    // refusal now means the server's images or caps changed since).
    let asked_limits = spec.limits.clone().unwrap_or_default();
    let shape = crate::service::sandboxes::Shape {
        image: &image_name,
        isolation: spec.isolation.as_deref(),
        limits: &asked_limits,
        env: &spec.env,
        network: spec.network.as_ref(),
        workdir: None,
        timeout_secs: spec.timeout_secs.unwrap_or(3600),
        user: None,
        writable_root: false,
    };
    let crate::service::sandboxes::Planned {
        spec: mut sspec,
        limits,
        identity,
    } = match crate::service::images::resolve(st, &store, &image_name)
        .await
        .and_then(|resolved| crate::service::sandboxes::spec_for(&shape, &st.cfg, resolved))
    {
        Ok(p) => p,
        Err(e) => return Outcome::Done(end(ReviewStatus::Failed, Some(e.to_string()))),
    };
    let timeout = shape.timeout_secs;
    let isolation = sspec.isolation;
    // Secrets are decrypted now, into the sandbox's env only; one deleted
    // (or undecryptable) since the submit fails the job: no retry helps.
    let secrets =
        match crate::secrets::resolve(st.vault.as_ref(), &store, &spec.secrets, spec.env.keys())
            .await
        {
            Ok(r) => r,
            Err(SecretError::Store(e)) => return Outcome::Retry(format!("reading secrets: {e}")),
            Err(SecretError::NotFound(n)) => {
                return Outcome::Done(end(
                    ReviewStatus::Failed,
                    Some(format!("secret {n:?} was deleted before the job started")),
                ))
            }
            Err(e) => {
                let why = crate::service::error::secret_message(e);
                return Outcome::Done(end(ReviewStatus::Failed, Some(why)));
            }
        };
    secrets.add_env(&mut sspec.env);
    // Its volumes, mounted for this attempt; one deleted since the submit
    // fails the job (no retry brings it back).
    let volumes = match crate::service::volumes::leases_for(st, &store, &spec.volumes).await {
        Ok((mounts, leases)) => {
            sspec.mounts.extend(mounts);
            if let Err(e) = sspec.validate() {
                return Outcome::Done(end(ReviewStatus::Failed, Some(e.to_string())));
            }
            leases
        }
        Err(e) if e.is_ours() => return Outcome::Retry(format!("mounting volumes: {e}")),
        Err(e) => {
            let why = format!("volumes: {}", e.into_message());
            return Outcome::Done(end(ReviewStatus::Failed, Some(why)));
        }
    };
    let network = crate::api::Network::from_mode(&sspec.network);
    let disk = sspec.limits.disk_bytes;
    let now = now_ms();
    let record = SandboxRecord {
        id: SandboxId::generate(),
        tenant_id: job.tenant_id.clone(),
        state: SandboxState::Running,
        spec: json!({"image": image_name, "limits": limits, "files": spec.files, "review": job.id, "network": network, "isolation": isolation}),
        labels: [("review".to_string(), job.id.to_string())].into(),
        memory_bytes: sspec.limits.memory_bytes.unwrap_or(0),
        owner: String::new(),
        created_at: now,
        expires_at: now + (timeout as i64 + EXPORT_MARGIN_SECS) * 1000,
        ended_at: None,
        end_reason: None,
        usage: None,
    };
    let sb_id = record.id.clone();
    let created = st
        .sandboxes
        .create(
            &store,
            SandboxLaunch {
                spec: sspec,
                files: files.clone(),
                record,
                takes_slot: false,
                masker: secrets.masker.clone(),
                public_ports: false,
                volumes,
                restore: None,
                resuming: false,
                plain_env: Default::default(),
                pause_on_timeout: false,
                from_checkpoint: None,
                keep_base: None,
            },
        )
        .await;
    if let Err(e) = created {
        return match e {
            // The tenant's quotas are taken by its other work for now.
            crate::service::Error::Quota(m) => {
                Outcome::Defer(format!("waiting for room in the quotas: {m}"))
            }
            // The node's room, or a failure of Warden's own: try again.
            e if e.is_ours() || matches!(e, crate::service::Error::Capacity(_)) => {
                Outcome::Retry(format!("starting the sandbox: {e}"))
            }
            // The job's own request cannot be run as it stands.
            e => Outcome::Done(end(ReviewStatus::Failed, Some(e.to_string()))),
        };
    }
    let Some(live) = st.sandboxes.get(&job.tenant_id, &sb_id) else {
        return Outcome::Retry("the sandbox vanished as it started".into());
    };
    // Started after the shutdown's sweep of sandboxes: nobody else would
    // stop it.
    if st.draining() {
        st.sandboxes
            .destroy(
                &job.tenant_id,
                &sb_id,
                SandboxState::Stopped,
                "server shutdown",
                "system",
            )
            .await;
        return Outcome::HandBack("the server began to stop as the job started".into());
    }
    let started_at = now_ms();
    let ran = execute(st, job, &spec, &live, timeout, cancel, lost).await;
    // Export whatever /output holds, however the command ended.
    let exported = super::manifest::export(st, &store, job, &live, disk).await;
    let ended = st
        .sandboxes
        .destroy(
            &job.tenant_id,
            &sb_id,
            SandboxState::Stopped,
            "review finished",
            "system",
        )
        .await
        .unwrap_or_default();
    let (status, exit, cancelled, log_truncated) = match ran {
        Ran::LeaseLost => return Outcome::LeaseLost,
        Ran::Broken(why) => return Outcome::Retry(why),
        Ran::HandBack(why) => return Outcome::HandBack(why),
        // Running the job again would not bring its sandbox back: the
        // tenant (or a fault inside it) ended it.
        Ran::Gone(why) => return Outcome::Done(end(ReviewStatus::Failed, Some(why))),
        Ran::Exited {
            status,
            cancelled,
            log_truncated,
        } => (status, status, cancelled, log_truncated),
    };
    // From here on the command has run: a failure of Warden's own ends the
    // job with the command's exit recorded, never runs the command again.
    let (collected, export_error) = match exported {
        Ok(c) => (c, None),
        Err(e) => (Default::default(), Some(e)),
    };
    let mut review_end = ReviewEnd {
        status: ReviewStatus::Succeeded,
        exit_code: exit.code,
        signal: exit.signal,
        error: None,
        usage: Some(ended.usage),
        storage: warden_store::jobs::JobStorage {
            log_bytes: 0,
            log_truncated,
            outputs_truncated: collected.truncated(),
        },
    };
    if cancelled {
        review_end.status = ReviewStatus::Cancelled;
        review_end.error = Some("cancelled while running".into());
    } else if status.timed_out {
        review_end.status = ReviewStatus::TimedOut;
        review_end.error = Some(format!("the command ran past its {timeout} s timeout"));
    } else if status.code != Some(0) {
        review_end.status = ReviewStatus::Failed;
        review_end.error = if ended.oom_killed {
            Some("memory limit exceeded: the kernel killed the command".into())
        } else {
            status.signal.map(|s| format!("killed by signal {s}"))
        };
        if spec.retry_on_failure {
            return Outcome::Retry(format!(
                "the command failed (exit {:?}, signal {:?})",
                status.code, status.signal
            ));
        }
    }
    if let Some(e) = &export_error {
        fail_after_run(&mut review_end, e);
    }
    let manifest = super::manifest::build(super::manifest::Facts {
        job,
        spec: &spec,
        identity: &identity,
        limits: &limits,
        timeout,
        network: &network,
        files: &files,
        collected: &collected,
        export_error: export_error.as_deref(),
        end: &review_end,
        exit: &exit,
        usage: &ended.usage,
        started_at,
    });
    if let Err(e) = outputs::put_manifest(&store, st.jobs.as_ref(), &job.id, &manifest).await {
        fail_after_run(
            &mut review_end,
            &format!("storing the manifest failed: {e:#}"),
        );
    }
    Outcome::Done(review_end)
}

/// A failure of Warden's own after the command ran: the job fails with it
/// (next to the command's own error, if any), its exit code kept.
fn fail_after_run(end: &mut ReviewEnd, why: &str) {
    if end.status == ReviewStatus::Succeeded {
        end.status = ReviewStatus::Failed;
    }
    end.error = Some(match end.error.take() {
        Some(e) => format!("{e}; {why}"),
        None => why.to_string(),
    });
}

//! Review jobs: the worker that claims them from the queue and runs each in
//! a fresh sandbox (`run`), their logs (`logs`) and outputs (`outputs`).

mod execute;
mod finish;
pub mod handle;
pub mod log_read;
pub mod logs;
mod manifest;
pub mod outputs;
mod run;
pub mod schedules;

pub use handle::JobsHandle;

use crate::state::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use warden_store::now_ms;

/// Claims and runs jobs, at most `jobs.concurrency` at once, until the
/// server drains.
pub async fn worker_loop(st: Shared) {
    let slots = Arc::new(Semaphore::new(st.cfg.jobs.concurrency.max(1) as usize));
    let lease = Duration::from_secs(st.cfg.jobs.lease_secs.max(1));
    loop {
        if st.draining() {
            return;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let now = now_ms();
        let claimed = st
            .jobs
            .claim_review(
                &st.sandboxes.owner,
                now,
                now + lease.as_millis() as i64,
                st.cfg.jobs.per_tenant.max(1),
            )
            .await;
        match claimed {
            Ok(Some(job)) => {
                let st2 = st.clone();
                st.jobs_handle.started();
                tokio::spawn(async move {
                    run::run(st2.clone(), job).await;
                    st2.jobs_handle.ended();
                    drop(permit);
                    st2.jobs_handle.wake.notify_one();
                });
            }
            Ok(None) => {
                drop(permit);
                // Nothing claimable: wait for a submit, or poll (other
                // nodes' submissions, retries coming due, lapsed leases).
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    st.jobs_handle.wake.notified(),
                )
                .await;
            }
            Err(e) => {
                drop(permit);
                tracing::error!("claiming a review job: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Waits (up to `limit`) for the jobs running on this node to settle.
pub async fn wait_idle(st: &Shared, limit: Duration) {
    let t0 = std::time::Instant::now();
    while st.jobs_handle.running() > 0 && t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

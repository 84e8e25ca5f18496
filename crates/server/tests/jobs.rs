//! The review job's state machine, in process and without root: the job
//! worker runs over a fake runtime whose "sandbox" is the real
//! `warden-init` as an ordinary host process (no isolation: the kernel's
//! part has its own suites), with a real SQLite queue. What is tested here
//! is Warden's bookkeeping of a job: pending -> running -> succeeded or
//! failed with the command's status (never run twice), failures of
//! Warden's own retried with backoff and then given up, cancellation of a
//! running job, a job that waits for room in its tenant's quotas without
//! using an attempt, and that every sandbox a job had is gone at its end.

mod common;

use common::{caller, world, Init, World};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use warden_server::api_reviews::SubmitReview;
use warden_server::auth::Caller;
use warden_server::config::Config;
use warden_server::service::reviews;
use warden_server::state::Shared;
use warden_store::jobs::{ReviewRecord, ReviewStatus};
use warden_store::{Quotas, TenantStore};

/// The server's shared state over `w`, with the job worker running (and
/// short retry backoffs and leases).
fn server(w: &World, tune: impl FnOnce(&mut Config)) -> Shared {
    let st = common::app(w, |cfg| {
        cfg.jobs.retry_backoff_ms = 50;
        cfg.jobs.lease_secs = 5;
        tune(cfg);
    });
    tokio::spawn(warden_server::jobs::worker_loop(st.clone()));
    st
}

async fn submit(st: &Shared, who: &Caller, req: serde_json::Value) -> ReviewRecord {
    let req: SubmitReview = serde_json::from_value(req).expect("a submit request");
    let (job, _) = reviews::submit(st, who, &req).await.expect("submitted");
    assert_eq!(job.status, ReviewStatus::Pending);
    job
}

/// The job once `done` says so (or fails the test after 30 s).
async fn until(
    st: &Shared,
    who: &Caller,
    job: &ReviewRecord,
    done: impl Fn(&ReviewRecord) -> bool,
) -> ReviewRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = reviews::find(st, who, job.id.as_str()).await.expect("job");
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "job stuck: {now:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ended(r: &ReviewRecord) -> bool {
    !matches!(r.status, ReviewStatus::Pending | ReviewStatus::Running)
}

/// Actions the tenant's audit chain holds about `target`, in order.
async fn audited(w: &World, store: &TenantStore, target: &str) -> Vec<(String, String)> {
    w.audit(store)
        .await
        .into_iter()
        .filter(|e| e.target == target)
        .map(|e| (e.action, e.actor))
        .collect()
}

/// Every sandbox the jobs had is gone once they have ended.
async fn nothing_left(w: &World) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.manager.running_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "a job's sandbox is still running"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        w.runtime.destroyed.load(Ordering::SeqCst),
        w.runtime.started.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_ends_with_its_commands_status_and_runs_it_once() {
    let w = world(Init::Process, 10).await;
    let st = server(&w, |_| {});
    let a = w.tenant("a", Quotas::default()).await;
    let who = caller(&a);

    let ok = submit(&st, &who, serde_json::json!({"shell": "echo hello"})).await;
    let ok = until(&st, &who, &ok, ended).await;
    assert_eq!(
        (ok.status, ok.exit_code, ok.attempts),
        (ReviewStatus::Succeeded, Some(0), 1),
        "{ok:?}"
    );
    assert!(ok.started_at.is_some() && ok.finished_at.is_some());

    // A command that fails ends the job failed with its status: it ran,
    // so it is never run again for Warden's sake.
    let bad = submit(&st, &who, serde_json::json!({"shell": "exit 3"})).await;
    let bad = until(&st, &who, &bad, ended).await;
    assert_eq!(
        (bad.status, bad.exit_code, bad.attempts),
        (ReviewStatus::Failed, Some(3), 1),
        "{bad:?}"
    );
    assert_eq!(w.runtime.started.load(Ordering::SeqCst), 2);
    let trail = audited(&w, &a, bad.id.as_str()).await;
    let actions: Vec<&str> = trail.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["review.submit", "review.finish"], "{trail:?}");
    assert_eq!(trail[1].1, "system");
    nothing_left(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_of_wardens_own_is_retried_with_backoff_then_given_up() {
    let w = world(Init::Process, 10).await;
    let st = server(&w, |c| c.jobs.max_attempts = 3);
    let a = w.tenant("a", Quotas::default()).await;
    let who = caller(&a);

    // The first start fails (before the command ran): run again.
    w.runtime.fail_starts.store(1, Ordering::SeqCst);
    let job = submit(&st, &who, serde_json::json!({"shell": "true"})).await;
    let job = until(&st, &who, &job, ended).await;
    assert_eq!(
        (job.status, job.attempts),
        (ReviewStatus::Succeeded, 2),
        "{job:?}"
    );
    let trail = audited(&w, &a, job.id.as_str()).await;
    assert!(
        trail.contains(&("review.retry".to_string(), "system".to_string())),
        "{trail:?}"
    );

    // Every start fails: given up after the last attempt, saying why.
    w.runtime.fail_starts.store(1000, Ordering::SeqCst);
    let doomed = submit(&st, &who, serde_json::json!({"shell": "true"})).await;
    let doomed = until(&st, &who, &doomed, ended).await;
    assert_eq!(
        (doomed.status, doomed.attempts, doomed.exit_code),
        (ReviewStatus::Failed, 3, None),
        "{doomed:?}"
    );
    let error = doomed.error.clone().unwrap_or_default();
    assert!(error.contains("gave up after 3 attempts"), "{error}");
    w.runtime.fail_starts.store(0, Ordering::SeqCst);
    nothing_left(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_cancelled_and_its_sandbox_ends() {
    let w = world(Init::Process, 10).await;
    let st = server(&w, |_| {});
    let a = w.tenant("a", Quotas::default()).await;
    let who = caller(&a);

    // The command says where it runs (its working directory is the fake
    // sandbox's), then sleeps.
    let job = submit(
        &st,
        &who,
        serde_json::json!({"shell": "echo $$ > pid.tmp && mv pid.tmp pid && exec sleep 60"}),
    )
    .await;
    until(&st, &who, &job, |r| r.status == ReviewStatus::Running).await;
    let pid_file = w.dir.path().join("work/fake-0/pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Ok(p) = std::fs::read_to_string(&pid_file) {
            break p.trim().to_string();
        }
        assert!(Instant::now() < deadline, "the job's command never started");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(alive(&pid), "the command {pid} is not running");
    let t0 = Instant::now();
    reviews::cancel(&st, &who, job.id.as_str())
        .await
        .expect("cancel");
    let job = until(&st, &who, &job, ended).await;
    assert_eq!(job.status, ReviewStatus::Cancelled, "{job:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "cancel took {:?}",
        t0.elapsed()
    );
    nothing_left(&w).await;
    // The cancelled job's command is gone with its sandbox.
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(&pid) {
        assert!(
            Instant::now() < deadline,
            "the job's command outlived its sandbox"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_for_room_in_its_tenants_quotas_without_using_an_attempt() {
    let w = world(Init::Process, 10).await;
    let st = server(&w, |_| {});
    let quotas = Quotas {
        max_memory_bytes: 1 << 30,
        ..Quotas::default()
    };
    let a = w.tenant("a", quotas).await;
    let who = caller(&a);
    // An interactive sandbox holds 768 MiB of the tenant's 1 GiB.
    let held = w.create(&a, 768).await.expect("interactive sandbox");

    let job = submit(
        &st,
        &who,
        serde_json::json!({"shell": "true", "limits": {"memory_mb": 512}}),
    )
    .await;
    // It comes round and goes back to wait, more than once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = reviews::find(&st, &who, job.id.as_str())
        .await
        .expect("job");
    assert_eq!(waiting.status, ReviewStatus::Pending, "{waiting:?}");
    assert_eq!(
        w.runtime.started.load(Ordering::SeqCst),
        1,
        "only the interactive one"
    );

    w.delete(&a, &held).await;
    let job = until(&st, &who, &job, ended).await;
    assert_eq!(
        (job.status, job.attempts),
        (ReviewStatus::Succeeded, 1),
        "{job:?}"
    );
    nothing_left(&w).await;
}

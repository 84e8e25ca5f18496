//! Review jobs whose sandbox goes away under them: deleted by the tenant,
//! its init killed, the server stopped. Each must end (or go back to the
//! queue) at once, never hang `running` holding a worker slot.

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use warden_store::JobStore;

/// Waits until the job runs and its command has printed `mark`; returns
/// the id of the job's sandbox.
async fn running_with_sandbox(a: &Api, job: &str, mark: &str) -> String {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "job {job} never ran"
        );
        let logs = a.get(&format!("/v1/reviews/{job}/logs")).await.text;
        if logs.contains(mark) {
            return crate::job_limits::job_sandbox(a, job).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Host pids of the processes in the server's sandbox cgroups whose pid in
/// their own namespace is 1: the sandboxes' inits.
fn inits(server: &Server) -> Vec<i32> {
    let mut out = Vec::new();
    for group in cgroups_left(server) {
        let procs = std::fs::read_to_string(format!("{group}/cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let ns_pid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|v| v.split_whitespace().last());
            if ns_pid == Some("1") && !out.contains(&pid) {
                out.push(pid);
            }
        }
    }
    out
}

fn failed_with(d: &Value, words: &str) {
    assert_eq!(d["status"], "failed", "{d}");
    let err = d["error"].as_str().unwrap_or_default();
    assert!(err.contains(words), "the reason should say {words:?}: {d}");
    // The job's own fault, not Warden's: it is not run again.
    assert_eq!(d["attempts"], 1, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_jobs_sandbox_fails_the_job_with_the_reason() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("deletes-own-sandbox", None).await;
    let job = submit(&a, json!({"shell": "echo started; sleep 300"})).await;
    let sandbox = running_with_sandbox(&a, &job, "started").await;
    let r = a.delete(&format!("/v1/sandboxes/{sandbox}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // Before the fix the job stayed `running` (its lease renewed) until the
    // server restarted.
    let d = wait_done(&a, &job, Duration::from_secs(20)).await;
    failed_with(&d, "sandbox was destroyed while the command ran (deleted)");
    let logs = a.get(&format!("/v1/reviews/{job}/logs")).await.text;
    assert!(logs.contains("(deleted)"), "{logs}");
    // The worker slot is free again: the next job runs and succeeds.
    let next = submit(&a, json!({"shell": "echo next"})).await;
    let d = wait_done(&a, &next, Duration::from_secs(60)).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_init_dies_fails_and_cancel_still_answers() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("init-dies", None).await;
    let job = submit(&a, json!({"shell": "echo started; sleep 300"})).await;
    running_with_sandbox(&a, &job, "started").await;
    let pids = inits(&server);
    assert_eq!(pids.len(), 1, "one sandbox, one init: {pids:?}");
    // SAFETY: kill(2) on a pid read from the sandbox's own cgroup.
    assert_eq!(unsafe { libc::kill(pids[0], libc::SIGKILL) }, 0);
    let r = a
        .post(&format!("/v1/reviews/{job}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = wait_done(&a, &job, Duration::from_secs(20)).await;
    failed_with(&d, "stopped answering: its init exited");
    // Its sandbox was torn down with it.
    let t0 = Instant::now();
    while !cgroups_left(&server).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{:?}",
            cgroups_left(&server)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_running_job_back_and_the_next_server_completes_it() {
    let mut server = Server::start_env(
        RuntimeDirs::private(),
        &[
            ("WARDEN_JOBS_LEASE_SECS", "2"),
            ("WARDEN_JOBS_RETRY_BACKOFF_MS", "100"),
        ],
    );
    let (tenant, a) = server.admin().tenant("handed-back", None).await;
    let job = submit(
        &a,
        json!({"shell": "echo started; sleep 3; echo done > /output/done.txt"}),
    )
    .await;
    running_with_sandbox(&a, &job, "started").await;
    let status = server.stop().expect("the server exits");
    assert!(status.success(), "{status:?}");
    // Before the fix the job never noticed its sandbox was gone: the row
    // stayed `running` until its lease lapsed.
    let db = warden_store::sqlite::open(&server.data_dir.join("warden.db"))
        .await
        .expect("the database");
    let row = db
        .get_review(
            &warden_store::TenantId::parse(&tenant).unwrap(),
            &warden_store::ReviewId::parse(&job).unwrap(),
        )
        .await
        .unwrap()
        .expect("the job");
    assert_eq!(row.status.as_str(), "pending", "{row:?}");
    drop(db);
    server.restart();
    let a = Api::new(&server.url, &a.token);
    let d = wait_done(&a, &job, Duration::from_secs(60)).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    let out = a
        .req(
            reqwest::Method::GET,
            &format!("/v1/reviews/{job}/outputs/done.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert_eq!(out.text().await.unwrap(), "done\n");
    let logs = a.get(&format!("/v1/reviews/{job}/logs")).await.text;
    assert!(logs.contains("back to the queue"), "{logs}");
}

/// The gVisor form of a sandbox vanishing under a job: every process of
/// the sandbox (runsc, its gofer, the Sentry that is the sandbox's kernel
/// and so its PID 1) killed from the host. The job ends failed with the
/// reason at once, and nothing of the sandbox is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gvisor_jobs_sandbox_vanishing_fails_the_job() {
    let server = Server::start_with(RuntimeDirs::private());
    let (_, a) = server.admin().tenant("gvisor-vanishes", None).await;
    let job = submit(
        &a,
        json!({"isolation": "gvisor", "shell": "echo started; sleep 300"}),
    )
    .await;
    running_with_sandbox(&a, &job, "started").await;
    let groups = cgroups_left(&server);
    let mut killed = 0;
    for group in &groups {
        let procs = std::fs::read_to_string(format!("{group}/cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) on a pid read from the sandbox's own cgroup.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    assert!(killed > 0, "no gVisor process found in {groups:?}");
    let d = wait_done(&a, &job, Duration::from_secs(30)).await;
    assert_eq!(d["status"], "failed", "{d}");
    let err = d["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("sandbox"),
        "the reason should name the sandbox: {d}"
    );
    assert_eq!(d["attempts"], 1, "{d}");
    eprintln!("the job failed with: {err}");
    let t0 = Instant::now();
    while !cgroups_left(&server).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{:?}",
            cgroups_left(&server)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The worker slot is free again.
    let next = submit(&a, json!({"isolation": "gvisor", "shell": "echo next"})).await;
    let d = wait_done(&a, &next, Duration::from_secs(60)).await;
    assert_eq!(d["status"], "succeeded", "{d}");
}

//! Review jobs within limits (issue 15): jobs count against their tenant's
//! quotas like sandboxes; per-sandbox CPUs and PIDs are capped by the
//! operator; a job's outputs and log are bounded, counted in the tenant's
//! storage, and its record says what was cut (the export's own faults are
//! in `job_export.rs`).

use crate::harness::*;
use crate::reviews::{download, submit, wait_done};
use reqwest::Method;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A job's command that waits until the test touches `/tmp/go` in its
/// sandbox (see [`release`]), then runs `then`.
pub(crate) fn gated(then: &str) -> String {
    format!("while [ ! -e /tmp/go ]; do sleep 0.05; done; {then}")
}

/// The running sandbox of a job (labelled `review=<id>`), once it is up.
pub async fn job_sandbox(a: &Api, job: &str) -> String {
    let t0 = Instant::now();
    loop {
        let r = a
            .get(&format!("/v1/sandboxes?state=running&label=review={job}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        if let Some(id) = r.body["items"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "job {job} never started: {}",
            a.get(&format!("/v1/reviews/{job}")).await.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets a [`gated`] job go on.
pub(crate) async fn release(a: &Api, sandbox: &str) {
    a.ok(sandbox, "touch /tmp/go").await;
}

pub(crate) fn paths(done: &Value) -> Vec<String> {
    done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) async fn manifest(a: &Api, id: &str) -> Value {
    serde_json::from_slice(&download(a, id, "manifest.json").await).unwrap()
}

/// (bytes allocated on disk, files) under `dir`, recursively.
pub(crate) fn disk_use(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                bytes += m.blocks() * 512;
                files += 1;
            }
        }
    }
    (bytes, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_count_against_the_tenants_quotas() {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_JOBS_RETRY_BACKOFF_MS", "100")],
    );
    let (_, a) = server
        .admin()
        .tenant("small", Some(json!({"max_memory_bytes": 128u64 << 20})))
        .await;
    // A 2 GiB job could never run under a 128 MiB quota: refused at once,
    // naming the quota (it used to run).
    let r = a
        .post(
            "/v1/reviews",
            json!({"shell": "true", "limits": {"memory_mb": 2048}}),
        )
        .await;
    let m = refused(&r, 429, "quota_exceeded");
    assert!(m.contains("max_memory_bytes"), "{m}");

    // Control: within the quota it runs. While it does, its memory is the
    // tenant's: a sandbox that would pass the total is refused.
    let job = submit(
        &a,
        json!({"shell": gated("echo ran"), "limits": {"memory_mb": 96}}),
    )
    .await;
    let sb = job_sandbox(&a, &job).await;
    let r = a
        .post("/v1/sandboxes", json!({"limits": {"memory_mb": 64}}))
        .await;
    let m = refused(&r, 429, "quota_exceeded");
    assert!(m.contains("max_memory_bytes"), "{m}");
    release(&a, &sb).await;
    let done = wait_done(&a, &job, Duration::from_secs(60)).await;
    assert_eq!(
        (done["status"].as_str(), done["exit_code"].as_i64()),
        (Some("succeeded"), Some(0)),
        "{done}"
    );
    // Its memory is free again once it ended.
    let other = a.sandbox(json!({"limits": {"memory_mb": 64}})).await;

    // The other way round: a job that does not fit next to the tenant's
    // sandbox waits for room (without using up its attempts) and runs once
    // the sandbox is gone.
    let job = submit(
        &a,
        json!({"shell": "echo later", "limits": {"memory_mb": 96}}),
    )
    .await;
    let t0 = Instant::now();
    loop {
        let r = a.get(&format!("/v1/reviews/{job}")).await;
        // (Between a claim and its deferral it reads `running` a moment.)
        let status = r.body["status"].as_str().unwrap_or_default().to_string();
        assert!(
            ["pending", "running"].contains(&status.as_str()),
            "it ran past the quota: {}",
            r.text
        );
        let waiting = r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_memory_bytes"));
        if waiting && status == "pending" {
            assert_eq!(r.body["attempts"], 0, "{}", r.text);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        a.delete(&format!("/v1/sandboxes/{other}")).await.status,
        204
    );
    let done = wait_done(&a, &job, Duration::from_secs(60)).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{done}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sandbox_pids_and_cpus_are_capped_and_tenant_totals_bounded() {
    let server = Server::start();
    let (_, a) = server
        .admin()
        .tenant("greedy", Some(json!({"max_pids": 1024, "max_cpus": 1})))
        .await;
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    // Past the operator's caps: 400 naming the cap, for sandboxes and jobs
    // alike (65536 PIDs and 64 CPUs used to be accepted).
    for (limits, cap) in [
        (json!({"pids": 65536}), "max_pids"),
        (json!({"cpus": 64.0}), "max_cpus"),
        (json!({"cpus": host_cpus as f64 + 0.5}), "max_cpus"),
    ] {
        let r = a.post("/v1/sandboxes", json!({"limits": limits})).await;
        let m = refused(&r, 400, "bad_request");
        assert!(m.contains(cap) && m.contains("[limits]"), "{m}");
        let r = a
            .post("/v1/reviews", json!({"shell": "true", "limits": limits}))
            .await;
        let m = refused(&r, 400, "bad_request");
        assert!(m.contains(cap), "{m}");
    }
    // Control: at the caps a sandbox starts and its PID limit is the one
    // asked for (the tenant's totals allow this one alone).
    let (_, roomy) = server.admin().tenant("roomy", None).await;
    let sb = roomy
        .sandbox(json!({"limits": {"pids": 4096, "cpus": host_cpus as f64}}))
        .await;
    assert_eq!(roomy.ok(&sb, "echo fine").await, "fine\n");

    // The tenant's totals: 2 x 512 PIDs fit in 1024, an 8-PID third does
    // not; 1 CPU is taken by the first sandbox.
    let one = a
        .sandbox(json!({"limits": {"pids": 512, "cpus": 0.5}}))
        .await;
    let _two = a
        .sandbox(json!({"limits": {"pids": 512, "cpus": 0.5}}))
        .await;
    let r = a
        .post("/v1/sandboxes", json!({"limits": {"pids": 8, "cpus": 0.1}}))
        .await;
    let m = refused(&r, 429, "quota_exceeded");
    assert!(
        m.starts_with("max_cpus") || m.starts_with("max_pids"),
        "{m}"
    );
    assert_eq!(a.delete(&format!("/v1/sandboxes/{one}")).await.status, 204);
    let r = a
        .post(
            "/v1/sandboxes",
            json!({"limits": {"pids": 1000, "cpus": 0.1}}),
        )
        .await;
    let m = refused(&r, 429, "quota_exceeded");
    assert!(m.starts_with("max_pids"), "{m}");
    let r = a
        .post(
            "/v1/sandboxes",
            json!({"limits": {"pids": 256, "cpus": 0.6}}),
        )
        .await;
    let m = refused(&r, 429, "quota_exceeded");
    assert!(m.starts_with("max_cpus"), "{m}");
    a.sandbox(json!({"limits": {"pids": 256, "cpus": 0.5}}))
        .await;
    // A job that could never fit the totals is refused at submit.
    let r = a
        .post(
            "/v1/reviews",
            json!({"shell": "true", "limits": {"pids": 2048}}),
        )
        .await;
    let m = refused(&r, 429, "quota_exceeded");
    assert!(m.starts_with("max_pids"), "{m}");
}

const OUTPUT_CAP: u64 = 16 << 20;
const FILES_CAP: u64 = 300;
const LOG_CAP: u64 = 1 << 20;

fn capped_server() -> Server {
    Server::start_env(
        RuntimeDirs::shared(),
        &[
            (
                "WARDEN_LIMITS_MAX_JOB_OUTPUT_BYTES",
                &OUTPUT_CAP.to_string(),
            ),
            ("WARDEN_LIMITS_MAX_JOB_OUTPUT_FILES", &FILES_CAP.to_string()),
            ("WARDEN_LIMITS_MAX_JOB_LOG_BYTES", &LOG_CAP.to_string()),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cannot_fill_the_host_disk_and_its_record_says_what_was_cut() {
    let server = capped_server();
    let (_, a) = server.admin().tenant("filler", None).await;
    // A sparse file costs the sandbox nothing; stored, it would cost the
    // host its full length (twice: scratch copy and object).
    let sparse = submit(
        &a,
        json!({"shell": "truncate -s 900M /output/sparse && echo small > /output/small.txt",
               "limits": {"disk_mb": 1024}}),
    )
    .await;
    // 60,000 files would cost the host 60,000 inodes (twice).
    let many = submit(
        &a,
        json!({"shell": "mkdir /output/many && cd /output/many && seq 1 60000 | xargs touch"}),
    )
    .await;
    // 50 MB of output into the log.
    let flood = submit(
        &a,
        json!({"shell": "echo first; head -c 50000000 /dev/zero | tr '\\0' x; echo; echo last"}),
    )
    .await;
    let sparse = wait_done(&a, &sparse, Duration::from_secs(120)).await;
    let many = wait_done(&a, &many, Duration::from_secs(120)).await;
    let flood = wait_done(&a, &flood, Duration::from_secs(120)).await;

    // Each ran once, succeeded, and says what was cut.
    for done in [&sparse, &many, &flood] {
        assert_eq!(
            (
                done["status"].as_str(),
                done["attempts"].as_u64(),
                done["exit_code"].as_i64()
            ),
            (Some("succeeded"), Some(1), Some(0)),
            "{done}"
        );
    }
    assert_eq!(paths(&sparse), ["manifest.json", "small.txt"], "{sparse}");
    assert_eq!(sparse["outputs_truncated"], true, "{sparse}");
    let m = manifest(&a, sparse["id"].as_str().unwrap()).await;
    let skipped = &m["skipped_outputs"][0];
    assert_eq!(skipped["path"], "/output/sparse", "{m}");
    assert!(
        skipped["reason"].as_str().unwrap().contains("export limit"),
        "{m}"
    );
    assert_eq!(
        (
            m["outputs_truncated"].as_bool(),
            m["output_limits"]["max_bytes"].as_u64()
        ),
        (Some(true), Some(OUTPUT_CAP)),
        "{m}"
    );

    // At most FILES_CAP files and directories kept; the rest counted.
    let kept = paths(&many);
    assert_eq!(
        kept.len() as u64,
        FILES_CAP,
        "one directory + files + manifest"
    );
    assert_eq!(many["outputs_truncated"], true);
    let m = manifest(&a, many["id"].as_str().unwrap()).await;
    let listed = m["skipped_outputs"].as_array().unwrap().len() as u64;
    let unlisted = m["skipped_outputs_unlisted"].as_u64().unwrap();
    assert_eq!(
        listed + unlisted,
        60_000 - (FILES_CAP - 1),
        "{}",
        m["skipped_outputs"][0]
    );
    assert!(m["skipped_outputs"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("files and directories"));

    // The log stops at its cap, says so, and the record too.
    assert_eq!(
        (
            flood["log_truncated"].as_bool(),
            flood["outputs_truncated"].as_bool()
        ),
        (Some(true), Some(false)),
        "{flood}"
    );
    let log_bytes = flood["log_bytes"].as_u64().unwrap();
    assert!(log_bytes <= LOG_CAP + 4096, "{log_bytes}");
    let logs = a
        .get(&format!(
            "/v1/reviews/{}/logs",
            flood["id"].as_str().unwrap()
        ))
        .await
        .text;
    assert!(logs.contains("first\n"), "{}", logs.len());
    let tail = &logs[logs.len().saturating_sub(300)..];
    assert!(
        logs.contains("the log reached its limit") && !logs.contains("last\n"),
        "{} bytes, ends {tail:?}",
        logs.len()
    );
    assert_eq!(sparse["log_truncated"], false);

    // The host holds what the caps allow, no more: objects (three jobs'
    // outputs, manifests and logs) and no scratch left behind.
    let (bytes, files) = disk_use(&server.data_dir.join("objects"));
    assert!(bytes < 3 * (LOG_CAP + (1 << 20)), "{bytes} bytes stored");
    assert!(files <= FILES_CAP + 10, "{files} objects");
    let (scratch_bytes, scratch_files) = disk_use(&server.data_dir.join("work"));
    assert_eq!((scratch_bytes, scratch_files), (0, 0));
    // And it all counts as the tenant's storage.
    let stored: u64 = [&sparse, &many, &flood]
        .iter()
        .map(|d| {
            d["log_bytes"].as_u64().unwrap()
                + d["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["size"].as_u64().unwrap())
                    .sum::<u64>()
        })
        .sum();
    let usage = a.get("/v1/usage").await;
    assert_eq!(
        usage.body["storage_bytes"].as_u64(),
        Some(stored),
        "{}",
        usage.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_jobs_outputs_arrive_and_count_in_storage() {
    let server = capped_server();
    let (_, a) = server.admin().tenant("normal", None).await;
    let input = a.upload("in.txt", &[b'i'; 1000]).await;
    let id = submit(
        &a,
        json!({"files": [input["id"]], "shell": "echo hello; printf 0123456789 > /output/a.txt; mkdir /output/b; head -c 100000 /dev/zero > /output/b/c.bin"}),
    )
    .await;
    let done = wait_done(&a, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(paths(&done), ["a.txt", "b/c.bin", "manifest.json"]);
    assert_eq!(
        (
            done["outputs_truncated"].as_bool(),
            done["log_truncated"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert_eq!(download(&a, &id, "a.txt").await, b"0123456789");
    assert_eq!(download(&a, &id, "b/c.bin").await.len(), 100_000);
    let outputs: u64 = done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["size"].as_u64().unwrap())
        .sum();
    let log = done["log_bytes"].as_u64().unwrap();
    assert!(log > 0, "{done}");
    let usage = a.get("/v1/usage").await;
    assert_eq!(
        usage.body["storage_bytes"].as_u64(),
        Some(1000 + outputs + log),
        "{}",
        usage.text
    );

    // Outputs never take a tenant past its storage quota: with 64 KiB
    // left, a 100 KB output is cut, and the record says so.
    let (_, tight) = server
        .admin()
        .tenant("tight", Some(json!({"max_storage_bytes": 64u64 << 10})))
        .await;
    let id = submit(
        &tight,
        json!({"shell": "printf ok > /output/small.txt; head -c 100000 /dev/zero > /output/big.bin"}),
    )
    .await;
    let done = wait_done(&tight, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(paths(&done), ["manifest.json", "small.txt"]);
    assert_eq!(done["outputs_truncated"], true);
    let m = manifest(&tight, &id).await;
    assert_eq!(m["skipped_outputs"][0]["path"], "/output/big.bin", "{m}");
    // What the job stored is the tenant's: an upload gets only the rest.
    let used = tight.get("/v1/usage").await.body["storage_bytes"]
        .as_u64()
        .unwrap();
    assert!(used > 2, "{used}");
    let left = (64u64 << 10) - used;
    let r = tight
        .send(
            tight
                .req(Method::POST, "/v1/files?name=x.txt")
                .body(vec![b'x'; left as usize + 1]),
        )
        .await;
    let msg = refused(&r, 413, "payload_too_large");
    assert!(
        msg.contains("max_storage_bytes") && msg.contains(&format!("{used} are in use")),
        "{msg}"
    );
}

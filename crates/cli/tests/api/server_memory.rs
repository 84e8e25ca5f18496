//! The server's memory under tenants' attacks: exec output buffered for
//! JSON answers (per request, per tenant, for the whole server) and big
//! review logs read back, each tried on a real `warden serve`, with the
//! server's memory read from `/proc/<pid>/status`.

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

/// A field of `/proc/<pid>/status` in bytes (VmHWM: the peak resident set).
pub fn vm(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in {status}"));
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_exec_output_is_capped_flagged_and_costs_the_server_little() {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_EXEC_OUTPUT_BYTES", "1048576")],
    );
    let (_, a) = server.admin().tenant("prints-a-lot", None).await;
    let sb = a.sandbox(json!({})).await;
    // The control: small output is whole and unflagged.
    let v = a.sh(&sb, "printf hello; printf oops >&2").await;
    assert_eq!(
        (v["stdout"].as_str(), v["stderr"].as_str()),
        (Some("hello"), Some("oops"))
    );
    assert_eq!(
        (v["stdout_truncated"].as_bool(), v["truncated"].as_bool()),
        (Some(false), Some(false))
    );
    let before = vm(server.pid(), "VmHWM");
    // 8 at once, 34 MiB of NUL bytes each: JSON spells each as \u0000.
    let line = "head -c 35651584 /dev/zero; echo err >&2";
    let replies = futures::future::join_all((0..8).map(|_| {
        let (a, sb) = (a.clone(), sb.clone());
        async move {
            a.post(
                &format!("/v1/sandboxes/{sb}/exec"),
                json!({ "shell": line }),
            )
            .await
        }
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, 200);
        assert_eq!(r.body["stdout"].as_str().unwrap().len(), 1 << 20);
        assert_eq!(r.body["stdout_truncated"], true);
        assert_eq!(r.body["stderr"], "err\n");
        assert_eq!(r.body["stderr_truncated"], false);
        assert_eq!(r.body["truncated"], true);
        assert_eq!(r.body["truncated_by"], "exec_output_bytes");
        assert!(r.text.len() < 7 << 20, "{} bytes of JSON", r.text.len());
    }
    let grew = vm(server.pid(), "VmHWM").saturating_sub(before);
    eprintln!(
        "server peak RSS grew {} MiB for 8 x 34 MiB of JSON exec output",
        grew >> 20
    );
    // Before the fix: ~190 MiB per request.
    assert!(
        grew < 200 << 20,
        "the server's peak RSS grew {} MiB",
        grew >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_review_log_streams_in_bounded_memory() {
    // The log is kept whole: the job log cap (64 MiB by default) is raised
    // past its size.
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_LIMITS_MAX_JOB_LOG_BYTES", "268435456")],
    );
    let (_, a) = server.admin().tenant("big-log", None).await;
    // Warm up the paths a job takes, then measure.
    let warm = submit(&a, json!({"shell": "echo warm"})).await;
    wait_done(&a, &warm, Duration::from_secs(60)).await;
    let before = vm(server.pid(), "VmHWM");
    const SIZE: u64 = 64 << 20;
    let job = submit(
        &a,
        json!({"shell": format!("head -c {SIZE} /dev/zero | tr '\\0' x; echo; sleep 2")}),
    )
    .await;
    let count = |path: String| {
        let a = a.clone();
        async move {
            let resp = a.req(reqwest::Method::GET, &path).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let mut n = 0u64;
            let mut body = resp.bytes_stream();
            while let Some(c) = body.next().await {
                n += c.unwrap().len() as u64;
            }
            n
        }
    };
    // One follows the log while the job runs.
    let t0 = Instant::now();
    loop {
        let r = a.get(&format!("/v1/reviews/{job}")).await;
        if r.body["status"] == "running" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let follower = tokio::spawn(count(format!(
        "/v1/reviews/{job}/logs?follow=true&stream=stdout"
    )));
    let d = wait_done(&a, &job, Duration::from_secs(120)).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    // Three read the stored log at once.
    let readers = futures::future::join_all(
        (0..3).map(|_| count(format!("/v1/reviews/{job}/logs?stream=stdout"))),
    )
    .await;
    assert_eq!(follower.await.unwrap(), SIZE + 1);
    assert_eq!(readers, vec![SIZE + 1; 3]);
    let grew = vm(server.pid(), "VmHWM").saturating_sub(before);
    eprintln!(
        "server peak RSS grew {} MiB for 4 readers of a 64 MiB log",
        grew >> 20
    );
    // Before the fix each reader held the log twice (raw and decoded).
    assert!(
        grew < 48 << 20,
        "the server's peak RSS grew {} MiB",
        grew >> 20
    );
}

/// What JSON-mode execs buffer is charged as it is kept, to the tenant's
/// share and to the server's total for every tenant's buffers: past either,
/// the output is cut there and the answer names the limit, while the
/// command runs to its end. Another tenant's output is not cut for the
/// first one's share, SSE mode buffers nothing, and every charge ends with
/// its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_exec_output_is_charged_per_tenant_and_per_server() {
    // 64 KiB per stream. Plain text costs two bytes a byte, so an exec
    // printing 60,000 bytes holds 120,000: the tenant's share (262,144)
    // has room for two such, the server's total (393,216) for three.
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_EXEC_OUTPUT_BYTES", "65536"),
            ("WARDEN_EXEC_OUTPUT_TENANT_BYTES", "262144"),
            ("WARDEN_BUFFERS_TOTAL_BYTES", "393216"),
        ],
    );
    let (_, a) = server.admin().tenant("buffers-a", None).await;
    let (_, b) = server.admin().tenant("buffers-b", None).await;
    let (sa, sb) = (a.sandbox(json!({})).await, b.sandbox(json!({})).await);
    let exec = |api: &Api, sandbox: &str, line: String| {
        let (api, path, body) = (
            api.clone(),
            format!("/v1/sandboxes/{sandbox}/exec"),
            json!({ "shell": line }),
        );
        async move { api.post(&path, body).await }
    };
    let print = |c: char, then: &str| format!("printf '%60000s' | tr ' ' {c}; {then}");
    let whole = |r: &Reply, c: char| {
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        assert_eq!(
            r.body["stdout"].as_str(),
            Some(c.to_string().repeat(60_000).as_str())
        );
        assert_eq!(
            (&r.body["truncated"], &r.body["truncated_by"]),
            (&json!(false), &json!(null))
        );
    };
    let cut = |r: &Reply, c: char, kept: usize, by: &str| {
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        assert_eq!(r.body["exit_code"], 0, "{}", r.body);
        assert_eq!(
            r.body["stdout"].as_str(),
            Some(c.to_string().repeat(kept).as_str())
        );
        assert_eq!(
            (&r.body["stdout_truncated"], &r.body["truncated_by"]),
            (&json!(true), &json!(by))
        );
    };
    // Tenant A holds 240,000 of its share with two slow execs.
    let held = tokio::spawn(futures::future::join(
        exec(&a, &sa, print('a', "sleep 4")),
        exec(&a, &sa, print('b', "sleep 4")),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A third from A keeps what is left of the share (22,144 bytes of
    // charge), says what cut it, and its command ran on to the end.
    let r = exec(&a, &sa, print('c', "touch /scratch/ran")).await;
    cut(&r, 'c', 11_072, "exec_output_tenant_bytes");
    assert_eq!(a.ok(&sa, "ls /scratch").await, "ran\n");
    // SSE mode buffers nothing: A still gets all of it that way.
    let sse = a
        .send(
            a.req(reqwest::Method::POST, &format!("/v1/sandboxes/{sa}/exec"))
                .header("accept", "text/event-stream")
                .json(&json!({"shell": "echo streamed"})),
        )
        .await;
    assert_eq!(sse.status, 200, "{}", sse.text);
    // "streamed\n", base64 in the event's data.
    assert!(sse.text.contains("c3RyZWFtZWQK"), "{}", sse.text);
    // Tenant B is not cut for A's share: its first exec keeps everything,
    // but a second one meets the server's total (33,216 bytes left).
    let b1 = tokio::spawn(exec(&b, &sb, print('d', "sleep 3")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = exec(&b, &sb, print('e', "true")).await;
    cut(&r, 'e', 16_608, "buffers_total_bytes");
    let (a1, a2) = held.await.expect("A's execs");
    whole(&a1, 'a');
    whole(&a2, 'b');
    whole(&b1.await.expect("B's exec"), 'd');
    // Every charge went with its answer: both tenants have all the room.
    whole(&exec(&a, &sa, print('f', "true")).await, 'f');
    whole(&exec(&b, &sb, print('g', "true")).await, 'g');
}

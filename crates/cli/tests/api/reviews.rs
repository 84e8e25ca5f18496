//! Review jobs through the HTTP API on a real server: outputs and manifest,
//! idempotency, failure paths, cancel, a deleted input, webhooks (receiver
//! down, then up), two tenants at once, and a kill -9 mid-run.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Polls a job until it reaches a terminal state.
pub async fn wait_done(a: &Api, id: &str, limit: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let r = a.get(&format!("/v1/reviews/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let s = r.body["status"].as_str().unwrap_or_default().to_string();
        if !["pending", "running"].contains(&s.as_str()) {
            return r.body;
        }
        assert!(
            t0.elapsed() < limit,
            "job still {s} after {limit:?}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn submit(a: &Api, body: Value) -> String {
    let r = a.post("/v1/reviews", body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    r.body["id"].as_str().unwrap().to_string()
}

pub async fn download(a: &Api, id: &str, path: &str) -> Vec<u8> {
    let r = a
        .req(Method::GET, &format!("/v1/reviews/{id}/outputs/{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.bytes().await.unwrap().to_vec()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_and_its_outputs_and_manifest_come_back() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("reviewer", None).await;
    let data = b"region,amount\nnorth,10\nsouth,32\n";
    let f = a.upload("sales.csv", data).await;
    let id = submit(
        &a,
        json!({"files": [f["id"]], "shell": "echo reading; cp /input/sales.csv /output/copy.csv; mkdir -p /output/charts; printf x > /output/charts/a.txt; ln -s /etc/passwd /output/link; echo done >&2",
               "idempotency_key": "once", "labels": {"kind": "test"}}),
    )
    .await;
    // The same key again: the first job, not a second.
    let again = a
        .post(
            "/v1/reviews",
            json!({"files": [f["id"]], "shell": "true", "idempotency_key": "once"}),
        )
        .await;
    assert_eq!(
        (again.status.as_u16(), again.body["id"].as_str()),
        (200, Some(id.as_str()))
    );
    let done = wait_done(&a, &id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        (done["exit_code"].clone(), done["attempts"].clone()),
        (json!(0), json!(1))
    );
    assert!(done["usage"]["wall_seconds"].as_f64().unwrap() > 0.0);
    let paths: Vec<&str> = done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["charts/a.txt", "copy.csv", "manifest.json"],
        "{done}"
    );
    assert_eq!(download(&a, &id, "copy.csv").await, data);
    assert_eq!(download(&a, &id, "charts/a.txt").await, b"x");
    // The manifest: inputs and outputs by hash, the command, the exit.
    let manifest: Value =
        serde_json::from_slice(&download(&a, &id, "manifest.json").await).unwrap();
    assert_eq!(manifest["inputs"][0]["sha256"], sha(data));
    assert_eq!(manifest["inputs"][0]["name"], "sales.csv");
    let outs = manifest["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 2, "{manifest}");
    for o in outs {
        let bytes = download(&a, &id, o["path"].as_str().unwrap()).await;
        assert_eq!(o["sha256"], sha(&bytes), "{o}");
    }
    assert_eq!(manifest["exit"]["status"], "succeeded");
    assert_eq!(manifest["image"]["name"], "host");
    assert!(
        manifest["skipped_outputs"][0]["path"]
            .as_str()
            .unwrap()
            .contains("link"),
        "{manifest}"
    );
    // Logs: both streams, or one.
    let logs = a.get(&format!("/v1/reviews/{id}/logs")).await.text;
    assert!(
        logs.contains("reading\n") && logs.contains("done\n"),
        "{logs}"
    );
    let out = a
        .get(&format!("/v1/reviews/{id}/logs?stream=stdout"))
        .await
        .text;
    assert_eq!(out, "reading\n");
    // Listing and filters.
    let l = a.get("/v1/reviews?status=succeeded").await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 1);
    // The job's sandbox is gone.
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_timeouts_memory_and_cancel_end_as_they_should() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("unlucky", None).await;
    let fail = submit(
        &a,
        json!({"files": [], "shell": "echo partial > /output/p.txt; exit 3"}),
    )
    .await;
    let slow = submit(
        &a,
        json!({"files": [], "command": ["sleep", "30"], "timeout_secs": 1}),
    )
    .await;
    let hog = submit(&a, json!({"files": [], "shell": "python3 -c 'b = b\"x\" * (400 << 20); print(len(b))'", "limits": {"memory_mb": 64}})).await;
    let missing = submit(&a, json!({"files": [], "command": ["no-such-tool"]})).await;
    let d = wait_done(&a, &fail, Duration::from_secs(30)).await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["exit_code"].as_i64(),
            d["attempts"].as_u64()
        ),
        (Some("failed"), Some(3), Some(1)),
        "{d}"
    );
    assert!(
        d["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["path"] == "p.txt"),
        "outputs of a failed job are kept: {d}"
    );
    let d = wait_done(&a, &slow, Duration::from_secs(30)).await;
    assert_eq!(d["status"], "timed_out", "{d}");
    let d = wait_done(&a, &hog, Duration::from_secs(30)).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["error"].as_str().unwrap_or_default().contains("memory"),
        "{d}"
    );
    let d = wait_done(&a, &missing, Duration::from_secs(30)).await;
    assert_eq!(
        (d["status"].as_str(), d["exit_code"].as_i64()),
        (Some("failed"), Some(127)),
        "{d}"
    );
    // Cancel mid-run: stopped at once, /output still exported.
    let long = submit(
        &a,
        json!({"files": [], "shell": "echo started > /output/s.txt; echo go; sleep 60"}),
    )
    .await;
    let t0 = Instant::now();
    loop {
        let l = a.get(&format!("/v1/reviews/{long}/logs")).await.text;
        if l.contains("go\n") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never started: {l}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = a
        .post(&format!("/v1/reviews/{long}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    let d = wait_done(&a, &long, Duration::from_secs(10)).await;
    assert_eq!(d["status"], "cancelled", "{d}");
    assert!(
        d["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["path"] == "s.txt"),
        "{d}"
    );
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_before_the_start_fails_the_job_and_pending_jobs_cancel_at_once() {
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_JOBS_PER_TENANT", "1")]);
    let (_, a) = server.admin().tenant("forgetful", None).await;
    let f = a.upload("gone.csv", b"a,b\n1,2\n").await;
    let fid = f["id"].as_str().unwrap();
    // One job at a time for this tenant: the second waits behind the first.
    let first = submit(&a, json!({"files": [], "command": ["sleep", "2"]})).await;
    let second = submit(
        &a,
        json!({"files": [fid], "command": ["cat", "/input/gone.csv"]}),
    )
    .await;
    let third = submit(&a, json!({"files": [], "command": ["true"]})).await;
    assert_eq!(a.delete(&format!("/v1/files/{fid}")).await.status, 204);
    let c = a
        .post(&format!("/v1/reviews/{third}/cancel"), json!({}))
        .await;
    assert_eq!(c.body["status"], "cancelled", "{}", c.text);
    assert_eq!(
        wait_done(&a, &first, Duration::from_secs(30)).await["status"],
        "succeeded"
    );
    let d = wait_done(&a, &second, Duration::from_secs(30)).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(d["error"].as_str().unwrap().contains("deleted"), "{d}");
    assert_eq!(
        wait_done(&a, &third, Duration::from_secs(5)).await["attempts"],
        0
    );
}

/// A tiny webhook receiver: answers 200 and hands each request's signature
/// header and body to the test.
async fn receiver(
    listener: tokio::net::TcpListener,
    tx: tokio::sync::mpsc::UnboundedSender<(String, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = &text[..end];
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let sig = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .starts_with("x-warden-signature:")
                                    .then(|| l[19..].trim().to_string())
                            })
                            .unwrap_or_default();
                        let body =
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                        let _ = tx.send((sig, body));
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_until_delivered_and_private_targets_refused() {
    // Without the operator's permission, loopback targets are refused.
    let strict = Server::start();
    let (_, s) = strict.admin().tenant("strict", None).await;
    let r = s
        .post(
            "/v1/reviews",
            json!({"files": [], "command": ["true"], "webhook_url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, "bad_request"),
        "{}",
        r.text
    );
    assert!(r.text.contains("not a public address"), "{}", r.text);
    let r = s.post("/v1/reviews", json!({"files": [], "command": ["true"], "webhook_url": "http://169.254.169.254/latest"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    drop(strict);

    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_WEBHOOKS_ALLOW_PRIVATE", "1"),
            ("WARDEN_WEBHOOKS_RETRY_BACKOFF_MS", "200"),
        ],
    );
    let (_, a) = server.admin().tenant("hooked", None).await;
    // A port nobody listens on yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let id = submit(
        &a,
        json!({"files": [], "command": ["true"], "webhook_url": url}),
    )
    .await;
    assert_eq!(
        wait_done(&a, &id, Duration::from_secs(30)).await["status"],
        "succeeded"
    );
    // The receiver is down: attempts fail and are visible.
    let t0 = Instant::now();
    loop {
        let d = a.get(&format!("/v1/reviews/{id}/webhooks")).await;
        let item = &d.body["items"][0];
        if item["attempts"].as_u64().unwrap_or(0) >= 2 {
            assert_eq!(item["status"], "pending", "{}", d.text);
            assert!(item["last_error"].is_string(), "{}", d.text);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no failed attempts: {}",
            d.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Up again: delivered, signed with the tenant's secret.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(receiver(listener, tx));
    let (sig, body) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("delivered")
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            v["event"].as_str(),
            v["review"]["id"].as_str(),
            v["review"]["status"].as_str()
        ),
        (
            Some("review.finished"),
            Some(id.as_str()),
            Some("succeeded")
        )
    );
    let secret = a.get("/v1/webhooks/secret").await.body["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let (t, v1) = sig.split_once(",v1=").expect("t=…,v1=…");
    let t = t.trim_start_matches("t=");
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    assert_eq!(
        v1,
        hex::encode(mac.finalize().into_bytes()),
        "signature does not verify"
    );
    let t0 = Instant::now();
    loop {
        let d = a.get(&format!("/v1/reviews/{id}/webhooks")).await;
        if d.body["items"][0]["status"] == "delivered" {
            assert_eq!(d.body["items"][0]["last_status_code"], 200);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", d.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_jobs_cannot_see_each_other() {
    let server = Server::start();
    let admin = server.admin();
    let (_, a) = admin.tenant("left", None).await;
    let (_, b) = admin.tenant("right", None).await;
    let fa = a.upload("left-secret.csv", b"l,1\nl,2\n").await;
    let fb = b.upload("right-secret.csv", b"r,1\nr,2\n").await;
    // Each job looks for the other's input and outputs while both run.
    let probe = "sleep 1; ls -A /input > /output/seen.txt; find / -xdev \\( -name 'left-secret*' -o -name 'right-secret*' \\) 2>/dev/null | grep -v '^/input/' >> /output/seen.txt; ls /proc | grep -c '^[0-9]' > /output/procs.txt; sleep 1";
    let ja = submit(&a, json!({"files": [fa["id"]], "shell": probe})).await;
    let jb = submit(&b, json!({"files": [fb["id"]], "shell": probe})).await;
    let da = wait_done(&a, &ja, Duration::from_secs(30)).await;
    let db = wait_done(&b, &jb, Duration::from_secs(30)).await;
    assert_eq!(
        (da["status"].as_str(), db["status"].as_str()),
        (Some("succeeded"), Some("succeeded"))
    );
    assert_eq!(download(&a, &ja, "seen.txt").await, b"left-secret.csv\n");
    assert_eq!(download(&b, &jb, "seen.txt").await, b"right-secret.csv\n");
    // And through the API: each tenant's job is not found for the other.
    let r = b.get(&format!("/v1/reviews/{ja}")).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let r = b.get(&format!("/v1/reviews/{ja}/outputs/seen.txt")).await;
    assert_eq!(r.status, 404);
    let r = b.get(&format!("/v1/reviews/{ja}/logs")).await;
    assert_eq!(r.status, 404);
    let r = b.post(&format!("/v1/reviews/{ja}/cancel"), json!({})).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_kill_of_its_server() {
    let mut server = Server::start_env(
        RuntimeDirs::private(),
        &[
            ("WARDEN_JOBS_LEASE_SECS", "2"),
            ("WARDEN_JOBS_RETRY_BACKOFF_MS", "100"),
        ],
    );
    let (_, a) = server.admin().tenant("resilient", None).await;
    let f = a.upload("in.csv", b"x,y\n1,2\n").await;
    let id = submit(&a, json!({"files": [f["id"]], "shell": "echo tick; sleep 3; cp /input/in.csv /output/out.csv"})).await;
    let t0 = Instant::now();
    loop {
        let r = a.get(&format!("/v1/reviews/{id}")).await;
        if r.body["status"] == "running" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    server.restart();
    let a = Api::new(&server.url, &a.token);
    let d = wait_done(&a, &id, Duration::from_secs(60)).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(download(&a, &id, "out.csv").await, b"x,y\n1,2\n");
    // The upload is intact and nothing of the first run is left.
    assert_eq!(
        a.get(&format!("/v1/files/{}", f["id"].as_str().unwrap()))
            .await
            .status,
        200
    );
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
    let logs = a.get(&format!("/v1/reviews/{id}/logs")).await.text;
    assert!(logs.matches("tick").count() >= 1, "{logs}");
}

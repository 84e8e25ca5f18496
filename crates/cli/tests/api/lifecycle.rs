//! The server's own life: restart (state survives, the dead process's
//! sandboxes are reaped), graceful shutdown, and many clients at once.

use crate::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn verify_audit(server: &Server) -> String {
    let out = std::process::Command::new(warden_bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "audit verify failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_kill_and_the_dead_servers_sandboxes_are_reaped() {
    let mut server = Server::start_with(RuntimeDirs::private());
    let (tid, a) = server.admin().tenant("durable", None).await;
    let f = a.upload("keep.csv", b"k,v\n1,2\n3,4\n").await;
    let fid = f["id"].as_str().unwrap().to_string();
    let sb = a.sandbox(json!({"files": [fid]})).await;
    // A daemon that tries to outlive everything.
    a.ok(
        &sb,
        "setsid sh -c 'sleep 600' >/dev/null 2>&1 & echo started",
    )
    .await;
    assert!(!cgroups_left(&server).is_empty());
    server.kill9();
    server.restart();
    // The key, the file and the audit chain survived; the sandbox is lost
    // and nothing of it runs.
    let a = crate::harness::Api::new(&server.url, &a.token);
    let g = a.get(&format!("/v1/files/{fid}")).await;
    assert_eq!(g.status, 200, "{}", g.text);
    let s = a.get(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(s.body["state"], "lost", "{}", s.text);
    assert!(
        cgroups_left(&server).is_empty(),
        "leaked: {:?}",
        cgroups_left(&server)
    );
    let dirs: Vec<_> = std::fs::read_dir(server.data_dir.join("sandboxes"))
        .unwrap()
        .collect();
    assert!(dirs.is_empty(), "sandbox directories left: {dirs:?}");
    let text = verify_audit(&server);
    assert!(text.contains(&format!("{tid}: ok")), "{text}");
    // And it still works.
    let sb2 = a.sandbox(json!({"files": [fid]})).await;
    assert_eq!(a.ok(&sb2, "cat /input/keep.csv").await, "k,v\n1,2\n3,4\n");
    let audit = a.get("/v1/audit?limit=1000").await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"sandbox.lost"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_destroys_sandboxes() {
    let mut server = Server::start();
    let (_, a) = server.admin().tenant("polite", None).await;
    let sb = a.sandbox(json!({})).await;
    a.ok(&sb, "true").await;
    let status = server.stop().expect("server was running");
    assert!(
        status.success(),
        "{status:?}\n{}",
        server.log.lock().unwrap()
    );
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
    server.restart();
    let a = crate::harness::Api::new(&server.url, &a.token);
    let s = a.get(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(
        (s.body["state"].as_str(), s.body["end_reason"].as_str()),
        (Some("stopped"), Some("server shutdown")),
        "{}",
        s.text
    );
    verify_audit(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_for_a_minute() {
    let server = Server::start();
    let (_, a) = server
        .admin()
        .tenant("busy", Some(json!({"max_sandboxes": 64, "max_memory_bytes": 64u64 << 30, "max_storage_bytes": 1u64 << 30, "max_file_bytes": 1u64 << 20})))
        .await;
    let secs: u64 = std::env::var("WARDEN_TEST_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..50 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut rounds = 0u32;
            while Instant::now() < until {
                let r = a
                    .post(
                        "/v1/sandboxes",
                        json!({"limits": {"memory_mb": 64}, "labels": {"client": c.to_string()}}),
                    )
                    .await;
                assert_eq!(r.status, 201, "client {c}: {}", r.text);
                let sb = r.body["id"].as_str().unwrap().to_string();
                let out = a.ok(&sb, &format!("echo {c}-{rounds}")).await;
                assert_eq!(out, format!("{c}-{rounds}\n"));
                let d = a.delete(&format!("/v1/sandboxes/{sb}")).await;
                assert_eq!(d.status, 204, "client {c}: {}", d.text);
                rounds += 1;
            }
            rounds
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client task");
    }
    eprintln!("50 clients: {total} create/exec/destroy rounds in {secs} s");
    assert!(total >= 50, "only {total} rounds");
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
    let r = a.get("/v1/sandboxes?state=running").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "{}", r.text);
    let m = reqwest::get(format!("{}/metrics", a.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("warden_sandboxes_running 0"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_cannot_pass_the_quota_together() {
    let server = Server::start();
    let (_, a) = server
        .admin()
        .tenant("racy", Some(json!({"max_sandboxes": 3})))
        .await;
    let creates = (0..10).map(|_| {
        let a = a.clone();
        tokio::spawn(async move {
            a.post("/v1/sandboxes", json!({"limits": {"memory_mb": 64}}))
                .await
        })
    });
    let mut created = 0;
    let mut refused = 0;
    for r in futures::future::join_all(creates).await {
        let r = r.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            429 => {
                assert!(r.text.contains("max_sandboxes"), "{}", r.text);
                refused += 1
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((created, refused), (3, 7));
    let running = a.get("/v1/sandboxes?state=running").await;
    assert_eq!(
        running.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        running.text
    );
}

//! Full flows: tenants, uploads, sandboxes, exec (JSON and streamed),
//! files inside sandboxes, background processes, timeouts, audit, usage.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_mount_exec_and_files() {
    let server = Server::start();
    let admin = server.admin();
    let (_, a) = admin.tenant("acme", None).await;
    let csv = b"region,amount\nnorth,10\nsouth,32\n".to_vec();
    let f = a.upload("sales q3.csv", &csv).await;
    assert_eq!(f["size"], csv.len());
    assert_eq!(f["content_type"], "text/csv");
    assert_eq!(f["sha256"], hex::encode(Sha256::digest(&csv)));
    // Multipart, with a PDF: the type comes from the bytes, not the name.
    let pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n".to_vec();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(pdf.clone()).file_name("report.txt"),
    );
    let r = a
        .send(a.req(Method::POST, "/v1/files").multipart(form))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["content_type"], "application/pdf");
    assert_eq!(r.body["name"], "report.txt");
    let pdf_id = r.body["id"].as_str().unwrap().to_string();
    // Download is byte-exact.
    let got = a
        .req(Method::GET, &format!("/v1/files/{pdf_id}/content"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf);
    // Listing pages.
    let p1 = a.get("/v1/files?limit=1").await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 1);
    let cur = p1.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let p2 = a.get(&format!("/v1/files?limit=1&cursor={cur}")).await;
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 1);
    assert!(p2.body["next_cursor"].is_null());

    let sb = a
        .sandbox(json!({"files": [f["id"], pdf_id], "labels": {"team": "risk"}, "env": {"GREETING": "hi"}}))
        .await;
    assert_eq!(
        a.ok(&sb, "cat '/input/sales q3.csv'").await.as_bytes(),
        &csv[..]
    );
    // /input is read-only, and the command runs as the sandbox user.
    let w = a
        .sh(&sb, "echo x > /input/new 2>&1; id -u; echo $GREETING")
        .await;
    assert_eq!(w["stdout"], "1000\nhi\n", "{w}");
    // Files inside the sandbox, through the init.
    let put = a
        .put_bytes(
            &format!("/v1/sandboxes/{sb}/files?path=/scratch/dir/a.txt"),
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(put.status, 404, "parent missing: {}", put.text);
    let mk = a
        .post(
            &format!("/v1/sandboxes/{sb}/files/mkdir?path=/scratch/dir"),
            json!({}),
        )
        .await;
    assert_eq!(mk.status, 204, "{}", mk.text);
    let put = a
        .put_bytes(
            &format!("/v1/sandboxes/{sb}/files?path=/scratch/dir/a.txt"),
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["size"], 5);
    assert_eq!(a.ok(&sb, "cat /scratch/dir/a.txt").await, "hello");
    let read = a
        .req(
            Method::GET,
            &format!("/v1/sandboxes/{sb}/files?path=/scratch/dir/a.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.bytes().await.unwrap().as_ref(), b"hello");
    // A file of many chunks (several are on their way at once) arrives
    // byte for byte, in order.
    let big: Vec<u8> = (0..3_000_017u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let put = a
        .put_bytes(
            &format!("/v1/sandboxes/{sb}/files?path=/scratch/big"),
            big.clone(),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let read = a
        .req(
            Method::GET,
            &format!("/v1/sandboxes/{sb}/files?path=/scratch/big"),
        )
        .send()
        .await
        .unwrap();
    assert!(
        read.bytes().await.unwrap().as_ref() == &big[..],
        "the big file"
    );
    let list = a
        .get(&format!("/v1/sandboxes/{sb}/files/list?path=/scratch/dir"))
        .await;
    assert_eq!(list.body["items"][0]["name"], "a.txt", "{}", list.text);
    assert_eq!(list.body["items"][0]["kind"], "file");
    let stat = a
        .get(&format!("/v1/sandboxes/{sb}/files/stat?path=/input"))
        .await;
    assert_eq!(stat.body["kind"], "dir");
    let rm = a
        .delete(&format!(
            "/v1/sandboxes/{sb}/files?path=/scratch/dir&recursive=true"
        ))
        .await;
    assert_eq!(rm.status, 204, "{}", rm.text);
    assert_eq!(a.sh(&sb, "test -e /scratch/dir").await["exit_code"], 1);
    // Exit codes, stdin, not-found.
    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"command": ["sh", "-c", "cat; exit 3"], "stdin": "piped"}),
        )
        .await;
    assert_eq!(
        (v.body["exit_code"].clone(), v.body["stdout"].clone()),
        (json!(3), json!("piped"))
    );
    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"command": ["no-such-cmd"]}),
        )
        .await;
    assert_eq!(v.body["exit_code"], 127, "{}", v.text);
    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "sleep 5", "timeout_secs": 0.3}),
        )
        .await;
    assert_eq!(v.body["timed_out"], true, "{}", v.text);
    // Sessions carry cwd and env.
    a.post(
        &format!("/v1/sandboxes/{sb}/exec"),
        json!({"shell": "cd /tmp && export X=7", "session": "s"}),
    )
    .await;
    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "echo $PWD $X", "session": "s"}),
        )
        .await;
    assert_eq!(v.body["stdout"], "/tmp 7\n");
    // Labels filter the listing.
    let l = a.get("/v1/sandboxes?state=running&label=team=risk").await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 1, "{}", l.text);
    let l = a.get("/v1/sandboxes?label=team=ops").await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 0);

    assert_eq!(a.delete(&format!("/v1/sandboxes/{sb}")).await.status, 204);
    let g = a.get(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(g.body["state"], "stopped");
    assert!(
        g.body["usage"]["wall_seconds"].as_f64().unwrap() > 0.0,
        "{}",
        g.text
    );
    assert!(
        g.body["usage"]["peak_memory_bytes"].as_u64().unwrap() > 0,
        "{}",
        g.text
    );
    let u = a.get("/v1/usage").await;
    assert_eq!(u.body["sandboxes"], 1, "{}", u.text);
    assert!(u.body["cpu_seconds"].as_f64().unwrap() > 0.0);
    // The gone sandbox answers 409, not a crash.
    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "true"}),
        )
        .await;
    assert_eq!((v.status.as_u16(), v.code()), (409, "conflict"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_output_as_it_is_produced() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("stream", None).await;
    let sb = a.sandbox(json!({})).await;
    let t0 = Instant::now();
    let resp = a
        .req(Method::POST, &format!("/v1/sandboxes/{sb}/exec"))
        .header("accept", "text/event-stream")
        .json(&json!({"shell": "echo first; sleep 1.5; echo second >&2; exit 4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = read_sse(resp).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["started", "stdout", "stderr", "exit"], "{events:?}");
    assert_eq!(b64(&events[1].data), b"first\n");
    assert_eq!(b64(&events[2].data), b"second\n");
    assert_eq!(events[3].data["exit_code"], 4);
    // The first line arrived long before the command ended.
    assert!(
        events[1].at.duration_since(t0) < Duration::from_millis(1000)
            && events[3].at.duration_since(t0) >= Duration::from_millis(1500),
        "stdout at {:?}, exit at {:?}",
        events[1].at.duration_since(t0),
        events[3].at.duration_since(t0)
    );
    // A missing command is an `error` event.
    let resp = a
        .req(Method::POST, &format!("/v1/sandboxes/{sb}/exec"))
        .header("accept", "text/event-stream")
        .json(&json!({"command": ["/nope"]}))
        .send()
        .await
        .unwrap();
    let events = read_sse(resp).await;
    assert_eq!(events.last().unwrap().event, "error", "{events:?}");
    assert_eq!(events.last().unwrap().data["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_processes_stdin_signal_attach() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("bg", None).await;
    let sb = a.sandbox(json!({})).await;
    let r = a
        .post(&format!("/v1/sandboxes/{sb}/exec"), json!({"shell": "echo ready; read line; echo got:$line; sleep 60", "background": true, "stdin": ""}))
        .await;
    // stdin "" is written and closed: `read` sees EOF.
    assert_eq!(r.status, 202, "{}", r.text);
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"command": ["sh", "-c", "read l; echo got:$l; sleep 60"], "background": true}),
        )
        .await;
    let pid = r.body["pid"].as_u64().unwrap();
    let list = a.get(&format!("/v1/sandboxes/{sb}/processes")).await;
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == pid),
        "{}",
        list.text
    );
    // No stdin pipe was asked for this one: writing is refused cleanly.
    let s = a
        .send(
            a.req(
                Method::POST,
                &format!("/v1/sandboxes/{sb}/processes/{pid}/stdin"),
            )
            .body("x\n"),
        )
        .await;
    assert!(s.status.is_client_error(), "{} {}", s.status, s.text);
    let r = a
        .post(&format!("/v1/sandboxes/{sb}/exec"), json!({"shell": "read l; echo got:$l; touch /tmp/echoed; sleep 60", "background": true, "stdin": "hello\n"}))
        .await;
    let pid2 = r.body["pid"].as_u64().unwrap();
    // Signal only once it has echoed its line (else TERM can win the race).
    let t0 = Instant::now();
    while a.sh(&sb, "test -e /tmp/echoed").await["exit_code"] != 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never echoed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sig = a
        .post(
            &format!("/v1/sandboxes/{sb}/processes/{pid2}/signal"),
            json!({"signal": "TERM"}),
        )
        .await;
    assert_eq!(sig.status, 204, "{}", sig.text);
    let w = a
        .post(
            &format!("/v1/sandboxes/{sb}/processes/{pid2}/wait"),
            json!({}),
        )
        .await;
    assert_eq!(w.body["signal"], 15, "{}", w.text);
    // Attaching replays what it printed.
    let resp = a
        .req(
            Method::GET,
            &format!("/v1/sandboxes/{sb}/processes/{pid2}/output"),
        )
        .send()
        .await
        .unwrap();
    let events = read_sse(resp).await;
    let out: Vec<u8> = events
        .iter()
        .filter(|e| e.event == "stdout")
        .flat_map(|e| b64(&e.data))
        .collect();
    assert_eq!(out, b"got:hello\n", "{events:?}");
    let bad = a
        .post(
            &format!("/v1/sandboxes/{sb}/processes/{pid}/signal"),
            json!({"signal": "NOPE"}),
        )
        .await;
    assert_eq!((bad.status.as_u16(), bad.code()), (400, "bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_extend_and_expire() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("slow", None).await;
    let sb = a.sandbox(json!({"timeout_secs": 1})).await;
    let ext = a
        .post(
            &format!("/v1/sandboxes/{sb}/timeout"),
            json!({"timeout_secs": 3}),
        )
        .await;
    assert_eq!(ext.status, 200, "{}", ext.text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Past the original timeout, within the extended one.
    assert_eq!(a.ok(&sb, "echo alive").await, "alive\n");
    let t0 = Instant::now();
    loop {
        let g = a.get(&format!("/v1/sandboxes/{sb}")).await;
        if g.body["state"] == "timed_out" {
            assert_eq!(g.body["end_reason"], "timeout");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "never timed out: {}",
            g.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "true"}),
        )
        .await;
    assert_eq!(v.status, 409);
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
    let audit = a.get("/v1/audit").await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"sandbox.timeout"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_upload_urls() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("signed", None).await;
    let r = a
        .post(
            "/v1/files/upload-url",
            json!({"name": "data.csv", "expires_in_secs": 60}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let url = r.body["url"].as_str().unwrap().to_string();
    let anon = reqwest::Client::new();
    let put = anon.put(&url).body("a,b\n1,2\n3,4\n").send().await.unwrap();
    assert_eq!(put.status(), 201);
    let file: serde_json::Value = put.json().await.unwrap();
    assert_eq!(file["name"], "data.csv");
    let listed = a
        .get(&format!("/v1/files/{}", file["id"].as_str().unwrap()))
        .await;
    assert_eq!(listed.status, 200);
    // Used once.
    let again = anon.put(&url).body("x").send().await.unwrap();
    assert_eq!(again.status(), 403);
    // Tampered: one character of the signature changed.
    let r = a
        .post("/v1/files/upload-url", json!({"name": "t.csv"}))
        .await;
    let mut url = r.body["url"].as_str().unwrap().to_string();
    let last = url.pop().unwrap();
    url.push(if last == 'A' { 'B' } else { 'A' });
    let t = anon.put(&url).body("x").send().await.unwrap();
    assert_eq!(t.status(), 403);
    // Expired.
    let r = a
        .post(
            "/v1/files/upload-url",
            json!({"name": "e.csv", "expires_in_secs": 1}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let e = anon
        .put(r.body["url"].as_str().unwrap())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(e.status(), 403);
    let body: serde_json::Value = e.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_openapi_matches_the_checked_in_document_and_health_answers() {
    let server = Server::start();
    let served = reqwest::get(format!("{}/openapi.json", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let checked_in = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/openapi.json"
    ))
    .unwrap();
    assert!(
        served == checked_in,
        "served /openapi.json differs from docs/openapi.json"
    );
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    for path in [
        "/v1/tenants",
        "/v1/files",
        "/v1/sandboxes/{id}/exec",
        "/v1/audit",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    for route in ["/healthz", "/readyz", "/metrics"] {
        let r = reqwest::get(format!("{}{route}", server.url))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{route}");
    }
    let m = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "warden_sandboxes_running",
        "warden_sandbox_create_seconds",
        "warden_execs_total",
    ] {
        assert!(m.contains(name), "{name} missing: {m}");
    }
}

/// A write that reaches the sandbox's file-size limit (its disk limit, the
/// init's `RLIMIT_FSIZE`) is refused with a clear error, and the init
/// serves on (a write at that limit is where the kernel signals
/// `SIGXFSZ`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_at_the_file_size_limit_is_refused_and_the_sandbox_lives() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("fsize", None).await;
    let sb = a.sandbox(json!({"limits": {"disk_mb": 1}})).await;
    // Exactly the limit in the first chunk, then more: the second chunk
    // starts at the limit.
    let put = a
        .put_bytes(
            &format!("/v1/sandboxes/{sb}/files?path=/scratch/big"),
            vec![7u8; (1 << 20) + 4096],
        )
        .await;
    assert_eq!(put.status, 413, "{}", put.text);
    assert!(put.text.contains("File too large"), "{}", put.text);
    assert_eq!(a.ok(&sb, "echo alive; ls -A /scratch").await, "alive\n");
}

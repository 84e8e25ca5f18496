//! Cross-tenant isolation: tenant B's key against every one of tenant A's
//! resources gets 404 (never 403: ids cannot be probed), and B's sandbox
//! cannot see A's files. Controls: the same requests with A's key work.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_resources_are_not_found() {
    let server = Server::start();
    let admin = server.admin();
    let (a_id, a) = admin.tenant("alpha", None).await;
    let (_b_id, b) = admin.tenant("beta", None).await;
    let secret = b"alpha-secret-payload,1\nx,2\n";
    let f = a.upload("alpha.csv", secret).await;
    let fid = f["id"].as_str().unwrap().to_string();
    let sb = a.sandbox(json!({"files": [fid]})).await;
    let bg = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "sleep 30", "background": true}),
        )
        .await;
    let pid = bg.body["pid"].as_u64().unwrap();

    let probes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/v1/files/{fid}"), None),
        (Method::GET, format!("/v1/files/{fid}/content"), None),
        (Method::DELETE, format!("/v1/files/{fid}"), None),
        (Method::GET, format!("/v1/sandboxes/{sb}"), None),
        (
            Method::POST,
            format!("/v1/sandboxes/{sb}/exec"),
            Some(json!({"shell": "id"})),
        ),
        (
            Method::POST,
            format!("/v1/sandboxes/{sb}/timeout"),
            Some(json!({"timeout_secs": 9})),
        ),
        (Method::GET, format!("/v1/sandboxes/{sb}/processes"), None),
        (
            Method::GET,
            format!("/v1/sandboxes/{sb}/processes/{pid}/output"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/sandboxes/{sb}/processes/{pid}/signal"),
            Some(json!({"signal": 9})),
        ),
        (
            Method::POST,
            format!("/v1/sandboxes/{sb}/processes/{pid}/wait"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/sandboxes/{sb}/processes/{pid}/stdin"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/sandboxes/{sb}/files?path=/input/alpha.csv"),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/sandboxes/{sb}/files?path=/scratch/x"),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/v1/sandboxes/{sb}/files?path=/scratch"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/sandboxes/{sb}/files/list?path=/input"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/sandboxes/{sb}/files/stat?path=/input"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/sandboxes/{sb}/files/mkdir?path=/scratch/y"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("/v1/sandboxes/{sb}"), None),
    ];
    for (m, path, body) in &probes {
        let mut rb = b.req(m.clone(), path);
        if let Some(v) = body {
            rb = rb.json(v);
        }
        let r = b.send(rb).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (404, "not_found"),
            "B {m} {path}: {}",
            r.text
        );
    }
    // B cannot mount A's file into its own sandbox either.
    let r = b.post("/v1/sandboxes", json!({"files": [fid]})).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (404, "not_found"),
        "{}",
        r.text
    );
    // Listings show only one's own.
    for path in ["/v1/files", "/v1/sandboxes", "/v1/audit"] {
        let r = b.get(path).await;
        assert!(
            !r.text.contains(&fid) && !r.text.contains(&sb),
            "B's {path} shows A's: {}",
            r.text
        );
    }
    let r = b.get("/v1/usage").await;
    assert_eq!(r.body["sandboxes"], 0);
    // B's own sandbox sees nothing of A's: its /input is empty, the host
    // paths of A's data do not exist inside it.
    let bsb = b.sandbox(json!({})).await;
    let out = b
        .sh(
            &bsb,
            &format!(
                "ls -A /input 2>&1; ls {dir} 2>&1; grep -rl -D skip alpha-secret /input /output /scratch /tmp /etc /dev/shm 2>/dev/null | head -3; echo end",
                dir = server.data_dir.display()
            ),
        )
        .await;
    let text = out["stdout"].as_str().unwrap();
    assert!(
        !text.contains("alpha"),
        "B's sandbox found A's data: {text}"
    );
    assert!(text.ends_with("end\n"), "{text}");
    // Controls: every probe above works for A (the process and file still
    // exist after B's attempts).
    assert_eq!(a.get(&format!("/v1/files/{fid}")).await.status, 200);
    let got = a.ok(&sb, "cat /input/alpha.csv").await;
    assert_eq!(got.as_bytes(), secret);
    let list = a.get(&format!("/v1/sandboxes/{sb}/processes")).await;
    assert!(list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["pid"] == pid && p["exit"].is_null()));
    // An admin key is not a tenant key, nor the other way round.
    let r = b.get(&format!("/v1/tenants/{a_id}")).await;
    assert_eq!(r.status, 401);
    let r = server.admin().get("/v1/files").await;
    assert_eq!(r.status, 401);
}

//! The MCP server through the official MCP Python SDK as a real client
//! (tests/mcp/client.py, installed by `make mcp-sdk`), on both transports:
//! `/mcp` on a real server and `warden mcp` on stdio. The script attacks
//! the walls too (another tenant's sandbox and upload, a bad key, the
//! command policy, a quota); here, what the audit log kept of its tool
//! calls, and what `/mcp` refuses to hold for anyone.

use crate::e2b_sdk::{installed, repo, run_checked};
use crate::harness::*;
use crate::policy::put_policy;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_python_sdk_uses_the_tools_on_both_transports() {
    let venv = repo().join("target/mcp-venv");
    installed(
        &venv.join(".installed"),
        "the MCP Python SDK (make mcp-sdk)",
    );
    let server = Server::start();
    let admin = server.admin();
    let (tid, main) = admin.tenant("mcp-main", None).await;
    let (_, other) = admin.tenant("mcp-other", None).await;
    let (_, quota) = admin
        .tenant("mcp-quota", Some(json!({ "max_sandboxes": 1 })))
        .await;
    let p = put_policy(
        &admin,
        &tid,
        json!({ "deny": ["*touch /scratch/forbidden*"] }),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);

    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(repo().join("tests/mcp/client.py"))
        .env("PYTHONUNBUFFERED", "1")
        .env("WARDEN_URL", &server.url)
        .env("WARDEN_API_KEY", &main.token)
        .env("WARDEN_OTHER_TENANT_KEY", &other.token)
        .env("WARDEN_QUOTA_KEY", &quota.token)
        .env("WARDEN_BIN", warden_bin());
    run_checked(&server, cmd).await;

    // The tool calls are in the audit log as the same requests from any
    // client: made sandboxes, uploads, commands, the denied one, writes.
    let log = main.get("/v1/audit?limit=1000").await;
    assert_eq!(log.status, 200, "{}", log.text);
    let entries = log.body["items"].as_array().cloned().unwrap_or_default();
    let count = |action: &str, outcome: Option<&str>| {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .filter(|e| outcome.is_none_or(|o| e["outcome"].as_str() == Some(o)))
            .count()
    };
    // Four transports' round trips, the walls' sandbox, run_code's.
    assert!(count("sandbox.create", Some("ok")) >= 6, "{entries:#?}");
    assert!(count("file.upload", None) >= 6, "{entries:#?}");
    assert!(count("sandbox.exec", None) >= 4 * 6, "{entries:#?}");
    assert!(count("sandbox.file_write", None) >= 4 * 2, "{entries:#?}");
    assert_eq!(count("exec.denied", None), 4, "{entries:#?}");
    let denied: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "exec.denied")
        .collect();
    assert!(
        denied.iter().all(|e| e["target"]
            .as_str()
            .unwrap_or_default()
            .contains("forbidden")
            || e["outcome"]
                .as_str()
                .unwrap_or_default()
                .contains("forbidden")),
        "{denied:#?}"
    );
    assert!(
        entries
            .iter()
            .filter(|e| [
                "sandbox.exec",
                "sandbox.file_write",
                "exec.denied",
                "file.upload"
            ]
            .contains(&e["action"].as_str().unwrap_or_default()))
            .all(|e| e["actor"].as_str().unwrap_or_default().starts_with("key_")),
        "every entry of the tool calls names the tenant's key: {entries:#?}"
    );
}

/// `/mcp` holds nothing for a client between requests (no sessions, no
/// server-held streams) and reads no more than the JSON limit of a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_over_http_holds_nothing_between_requests_and_bounds_bodies() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("mcp-bounds", None).await;
    let post = |body: Vec<u8>| {
        a.req(Method::POST, "/mcp")
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .body(body)
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let r = a.send(post(init.to_string().into_bytes())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["result"]["serverInfo"]["name"], "warden",
        "{}",
        r.text
    );
    let resp = post(init.to_string().into_bytes())
        .send()
        .await
        .expect("post");
    assert!(
        resp.headers().get("mcp-session-id").is_none(),
        "no session is kept for a client"
    );

    // No standalone stream for the server to keep open.
    let r = a
        .send(
            a.req(Method::GET, "/mcp")
                .header("Accept", "text/event-stream"),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);

    // A body declared over the JSON limit (1 MiB) is refused from its
    // headers, before any of it is read: the answer comes while the body
    // is still unsent (over a raw socket, as a client that never sends
    // it). A control just under the limit is read (and answered as the
    // JSON-RPC it is not).
    let head = declared_body_answer(&server.url, &a.token, 2 << 20).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    let r = a.send(post(vec![b' '; 512 << 10])).await;
    assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);

    // A disabled tenant's key no longer reaches the tools.
    let tid = server.admin().get("/v1/tenants").await.body["items"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "mcp-bounds").cloned())
        .expect("the tenant")["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let d = server
        .admin()
        .post(&format!("/v1/tenants/{tid}/disable"), json!({}))
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let r = a.send(post(init.to_string().into_bytes())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

/// The status line `/mcp` answers to a POST whose headers declare `len`
/// bytes of body, none of which is sent.
async fn declared_body_answer(url: &str, token: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("write the head");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("an answer before any body byte was sent")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

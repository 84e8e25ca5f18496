//! Tenant secrets on a real server: the API (values go in, never come
//! out), secrets as environment variables in sandboxes and review jobs,
//! masking of their values in exec output and stored logs, tenant
//! separation, a server without a key and one with the wrong key, and a
//! walk over the whole data directory and the server's log looking for
//! the plaintext.

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

pub const KEY: &str = "5f0e7c1d2b3a49586776859aabbccddeeff00112233445566778899aabbccdd0";
const OTHER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A value unique to this run, so finding it anywhere means a leak.
pub fn fresh_value(tag: &str) -> String {
    let seed = format!(
        "{tag}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    format!(
        "wsv-{}",
        &hex::encode(Sha256::digest(seed.as_bytes()))[..32]
    )
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn with_key() -> Server {
    Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_SECRETS_KEY", KEY),
            // Everything the server logs, so the log check covers it.
            ("WARDEN_LOG", "debug,hyper=info,h2=info,sqlx=info"),
        ],
    )
}

/// Every file under `dir` (database, WAL, objects, logs, sandbox dirs)
/// whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let bytes = std::fs::read(&p).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}

/// Checks an error answer's status and code.
fn refused(r: &Reply, status: u16, code: &str) {
    assert_eq!((r.status.as_u16(), r.code()), (status, code), "{}", r.text);
}

fn assert_absent(what: &str, text: &str, values: &[&str]) {
    for v in values {
        assert!(!text.contains(v), "a secret value in {what}: {text}");
    }
}

/// The stdout of an SSE exec or attach, reassembled.
async fn sse_stdout(a: &Api, path: &str, body: Option<Value>) -> String {
    let rb = match body {
        Some(b) => a.req(Method::POST, path).json(&b),
        None => a.req(Method::GET, path),
    };
    let resp = rb
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = read_sse(resp).await;
    let mut out = Vec::new();
    for e in &events {
        if e.event == "stdout" {
            out.extend(b64(&e.data));
        }
    }
    assert!(events.iter().any(|e| e.event == "exit"), "{events:?}");
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_sandboxes_as_env_and_nowhere_else() {
    let mut server = with_key();
    let (_, a) = server.admin().tenant("owner", None).await;
    let (_, b) = server.admin().tenant("neighbour", None).await;
    let token = fresh_value("token");
    let password = fresh_value("password");
    let values = [token.as_str(), password.as_str()];
    let mut seen = String::new(); // every answer, checked at the end

    // Bad input: refused, and the value is not echoed back.
    for (body, code) in [
        (json!({"name": "api-token", "value": token}), "bad_request"),
        (
            json!({"name": "API_TOKEN", "value": "short"}),
            "bad_request",
        ),
        (
            json!({"name": "API_TOKEN", "value": format!("{token}\u{0}")}),
            "bad_request",
        ),
        (
            json!({"name": "API_TOKEN", "value": token, "extra": 1}),
            "bad_request",
        ),
        (json!({"name": token, "value": 12345678}), "bad_request"),
    ] {
        let r = a.post("/v1/secrets", body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, code), "{}", r.text);
        seen += &r.text;
    }
    // Create, conflict, replace.
    let r = a
        .post("/v1/secrets", json!({"name": "API_TOKEN", "value": token}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "API_TOKEN");
    assert!(r.body["created_at"].is_string() && r.body.get("value").is_none());
    seen += &r.text;
    let r = a
        .post(
            "/v1/secrets",
            json!({"name": "API_TOKEN", "value": password}),
        )
        .await;
    refused(&r, 409, "conflict");
    seen += &r.text;
    for (name, value) in [("DB_PASSWORD", &password), ("API_TOKEN", &token)] {
        let r = a
            .post(
                "/v1/secrets?replace=true",
                json!({"name": name, "value": value}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        seen += &r.text;
    }
    let r = a.get("/v1/secrets").await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API_TOKEN", "DB_PASSWORD"], "{}", r.text);
    seen += &r.text;

    // A sandbox gets them as env; the record keeps names.
    let r = a
        .post(
            "/v1/sandboxes",
            json!({"secrets": ["API_TOKEN", "DB_PASSWORD"], "env": {"PLAIN": "x"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["secrets"], json!(["API_TOKEN", "DB_PASSWORD"]));
    seen += &r.text;
    let sb = r.body["id"].as_str().unwrap().to_string();
    seen += &a.get(&format!("/v1/sandboxes/{sb}")).await.text;
    seen += &a.get("/v1/sandboxes").await.text;
    // Visible inside: the hash computed in the sandbox is the value's.
    let inside = a
        .ok(
            &sb,
            "printf %s \"$API_TOKEN\" | sha256sum; printf %s \"$DB_PASSWORD\" | sha256sum",
        )
        .await;
    assert_eq!(
        inside,
        format!(
            "{}  -\n{}  -\n",
            sha(token.as_bytes()),
            sha(password.as_bytes())
        )
    );
    // Printed: masked, in JSON mode...
    let v = a
        .sh(&sb, "printenv API_TOKEN; echo \"pw=$DB_PASSWORD!\" >&2")
        .await;
    assert_eq!(
        (v["stdout"].as_str(), v["stderr"].as_str()),
        (Some("***\n"), Some("pw=***!\n")),
        "{v}"
    );
    seen += &v.to_string();
    // ... in SSE mode, also when the value comes in two pieces...
    let split = "n=$((${#API_TOKEN}/2)); printf %s \"$API_TOKEN\" | cut -c1-$n | tr -d '\\n'; \
                 sleep 0.3; printf %s \"$API_TOKEN\" | cut -c$((n+1))-";
    let out = sse_stdout(
        &a,
        &format!("/v1/sandboxes/{sb}/exec"),
        Some(json!({"shell": split})),
    )
    .await;
    assert_eq!(out, "***\n");
    seen += &out;
    // ... and for a background process, attached to afterwards.
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "sleep 0.2; echo \"t=$API_TOKEN\"", "background": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let pid = r.body["pid"].as_u64().unwrap();
    let out = sse_stdout(
        &a,
        &format!("/v1/sandboxes/{sb}/processes/{pid}/output"),
        None,
    )
    .await;
    assert_eq!(out, "t=***\n");
    seen += &out;

    // A review job: env inside, masked log, names in the manifest.
    let id = submit(
        &a,
        json!({"secrets": ["API_TOKEN"],
               "shell": "echo \"token=$API_TOKEN\"; echo \"$API_TOKEN\" >&2; printf %s \"$API_TOKEN\" | sha256sum > /output/sha.txt"}),
    )
    .await;
    let done = wait_done(&a, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["secrets"], json!(["API_TOKEN"]));
    seen += &done.to_string();
    let logs = a.get(&format!("/v1/reviews/{id}/logs")).await.text;
    assert!(
        logs.contains("token=***\n") && logs.contains("\n***\n"),
        "{logs}"
    );
    seen += &logs;
    for path in ["sha.txt", "manifest.json"] {
        let r = a
            .req(Method::GET, &format!("/v1/reviews/{id}/outputs/{path}"))
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        if path == "sha.txt" {
            assert_eq!(text, format!("{}  -\n", sha(token.as_bytes())));
        } else {
            let m: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(m["secret_names"], json!(["API_TOKEN"]), "{m}");
        }
        seen += &text;
    }

    // The other tenant can neither see, delete nor use A's secrets.
    let r = b.get("/v1/secrets").await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    let r = b.delete("/v1/secrets/API_TOKEN").await;
    refused(&r, 404, "not_found");
    let r = b
        .post("/v1/sandboxes", json!({"secrets": ["API_TOKEN"]}))
        .await;
    refused(&r, 400, "secret_not_found");
    assert!(r.text.contains("API_TOKEN"), "{}", r.text);
    let r = b
        .post(
            "/v1/reviews",
            json!({"secrets": ["API_TOKEN"], "shell": "true"}),
        )
        .await;
    refused(&r, 400, "secret_not_found");
    // Names that clash with env, or repeat, are refused.
    let r = a
        .post(
            "/v1/sandboxes",
            json!({"secrets": ["API_TOKEN"], "env": {"API_TOKEN": "plain"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // Delete: gone for new sandboxes.
    assert_eq!(a.delete("/v1/secrets/DB_PASSWORD").await.status, 204);
    assert_eq!(a.delete("/v1/secrets/DB_PASSWORD").await.status, 404);
    let r = a
        .post("/v1/sandboxes", json!({"secrets": ["DB_PASSWORD"]}))
        .await;
    refused(&r, 400, "secret_not_found");

    // The audit names secrets, never their values.
    let audit = a.get("/v1/audit").await;
    assert!(
        audit.text.contains("secret.create") && audit.text.contains("\"API_TOKEN\""),
        "{}",
        audit.text
    );
    seen += &audit.text;
    assert_absent("API answers", &seen, &values);

    assert_eq!(a.delete(&format!("/v1/sandboxes/{sb}")).await.status, 204);
    server.stop();
    let log = server.log.lock().unwrap().clone();
    assert!(log.len() > 100, "expected a debug log: {log}");
    assert_absent("the server's log", &log, &values);
    // The walk does reach the objects: the output holding the hash is found.
    let hash = sha(token.as_bytes());
    assert!(!files_containing(&server.data_dir, hash.as_bytes()).is_empty());
    for v in values {
        let hits = files_containing(&server.data_dir, v.as_bytes());
        assert!(hits.is_empty(), "the plaintext is stored in {hits:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_secrets_are_disabled() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("nokey", None).await;
    let value = fresh_value("nokey");
    let mut answers = vec![
        a.post("/v1/secrets", json!({"name": "API_TOKEN", "value": value}))
            .await,
        a.get("/v1/secrets").await,
        a.delete("/v1/secrets/API_TOKEN").await,
        a.post("/v1/sandboxes", json!({"secrets": ["API_TOKEN"]}))
            .await,
    ];
    answers.push(
        a.post(
            "/v1/reviews",
            json!({"secrets": ["API_TOKEN"], "shell": "true"}),
        )
        .await,
    );
    for r in &answers {
        refused(r, 503, "secrets_disabled");
        assert!(r.text.contains("WARDEN_SECRETS_KEY"), "{}", r.text);
        assert!(!r.text.contains(&value));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_key_names_the_secret_and_hides_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = RuntimeDirs::shared();
    let value = fresh_value("rekey");
    let mut first = Server::start_in(dir.path(), &dirs, &[("WARDEN_SECRETS_KEY", KEY)]);
    let (_, a) = first.admin().tenant("rekeyed", None).await;
    let r = a
        .post("/v1/secrets", json!({"name": "OLD_TOKEN", "value": value}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    first.stop();
    drop(first);
    let second = Server::start_in(dir.path(), &dirs, &[("WARDEN_SECRETS_KEY", OTHER_KEY)]);
    let a = Api::new(&second.url, &a.token);
    for r in [
        a.post("/v1/sandboxes", json!({"secrets": ["OLD_TOKEN"]}))
            .await,
        a.post(
            "/v1/reviews",
            json!({"secrets": ["OLD_TOKEN"], "shell": "true"}),
        )
        .await,
    ] {
        refused(&r, 500, "secret_undecryptable");
        assert!(
            r.text.contains("OLD_TOKEN") && !r.text.contains(&value),
            "{}",
            r.text
        );
    }
    // Still listed, and can be replaced under the new key.
    assert!(a.get("/v1/secrets").await.text.contains("OLD_TOKEN"));
    let r = a
        .post(
            "/v1/secrets?replace=true",
            json!({"name": "OLD_TOKEN", "value": value}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = a.sandbox(json!({"secrets": ["OLD_TOKEN"]})).await;
    assert_eq!(a.ok(&id, "printenv OLD_TOKEN").await, "***\n");
}

#[test]
fn the_cli_sets_lists_and_removes_secrets() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_SECRETS_KEY", KEY)]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, a) = rt.block_on(server.admin().tenant("cli", None));
    let value = fresh_value("cli");
    let warden = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(warden_bin())
            .args(args)
            .env("WARDEN_URL", &server.url)
            .env("WARDEN_API_KEY", &a.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!text.contains(&value), "{text}");
        (out.status.code(), text)
    };
    // The value from stdin, its trailing newline dropped.
    let (code, text) = warden(&["secret", "set", "CLI_TOKEN"], Some(&format!("{value}\n")));
    assert_eq!((code, text.as_str()), (Some(0), "CLI_TOKEN\n"));
    let (code, _) = warden(&["secret", "set", "CLI_TOKEN"], Some(&value));
    assert_eq!(code, Some(125), "an existing name needs --replace");
    let (code, _) = warden(&["secret", "set", "CLI_TOKEN", "--replace"], Some(&value));
    assert_eq!(code, Some(0));
    let (code, text) = warden(&["secret", "list", "--json"], None);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["items"][0]["name"], "CLI_TOKEN", "{v}");
    // The sandbox gets it with --secret.
    let (code, id) = warden(&["sandbox", "create", "--secret", "CLI_TOKEN"], None);
    assert_eq!(code, Some(0), "{id}");
    let inside = rt.block_on(a.ok(id.trim(), "printf %s \"$CLI_TOKEN\" | sha256sum"));
    assert_eq!(inside, format!("{}  -\n", sha(value.as_bytes())));
    let (code, text) = warden(&["secret", "rm", "CLI_TOKEN"], None);
    assert_eq!((code, text.as_str()), (Some(0), "deleted CLI_TOKEN\n"));
    let (code, _) = warden(&["secret", "rm", "CLI_TOKEN"], None);
    assert_eq!(code, Some(125));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_deleted_before_its_job_starts_fails_the_job_once() {
    // One job at a time: the second waits behind the first.
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_SECRETS_KEY", KEY),
            ("WARDEN_JOBS_CONCURRENCY", "1"),
        ],
    );
    let (_, a) = server.admin().tenant("late", None).await;
    let value = fresh_value("late");
    let r = a
        .post("/v1/secrets", json!({"name": "LATE_TOKEN", "value": value}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = submit(&a, json!({"shell": "sleep 1.5"})).await;
    let second = submit(
        &a,
        json!({"secrets": ["LATE_TOKEN"], "shell": "echo \"$LATE_TOKEN\""}),
    )
    .await;
    assert_eq!(a.delete("/v1/secrets/LATE_TOKEN").await.status, 204);
    let done = wait_done(&a, &first, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let done = wait_done(&a, &second, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["attempts"], 1, "no retry: {done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("LATE_TOKEN") && error.contains("deleted"),
        "{done}"
    );
}

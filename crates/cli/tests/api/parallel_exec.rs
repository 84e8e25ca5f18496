//! Many short commands at once in one sandbox: every answer carries the
//! command's own output (issue 15, item 1). One SIGCHLD's `waitpid(-1)`
//! used to reap a second command whose output the init's reactor had not
//! seen yet, and that command answered exit 0 with empty stdout.

use crate::harness::*;
use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::json;

/// Commands in flight at once (the reports saw losses from 5 to 8).
const PARALLEL: usize = 8;

/// Runs `count` commands `PARALLEL` at a time through `one` (which answers
/// the stdout it got for marker `i`) and returns the ones that came back
/// wrong.
async fn losses<F, Fut>(count: usize, one: F) -> Vec<(usize, String)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    stream::iter(0..count)
        .map(|i| {
            let fut = one(i);
            async move { (i, fut.await) }
        })
        .buffer_unordered(PARALLEL)
        .filter(|(i, out)| {
            let ok = *out == format!("hi-{i}\n");
            async move { !ok }
        })
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_execs_never_lose_their_output() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("parallel", None).await;
    let sb = a.sandbox(json!({})).await;
    let path = format!("/v1/sandboxes/{sb}/exec");

    // JSON mode: the answer's stdout and exit code.
    let lost = losses(2000, |i| {
        let (a, path) = (&a, &path);
        async move {
            let r = a
                .post(path, json!({"command": ["echo", format!("hi-{i}")]}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["exit_code"], 0, "{}", r.text);
            r.body["stdout"].as_str().unwrap_or_default().to_string()
        }
    })
    .await;
    assert!(lost.is_empty(), "JSON mode lost output: {lost:?}");

    // SSE mode: the stdout events before `exit`.
    let lost = losses(600, |i| {
        let (a, path) = (&a, &path);
        async move {
            let resp = a
                .req(Method::POST, path)
                .header("accept", "text/event-stream")
                .json(&json!({"command": ["echo", format!("hi-{i}")]}))
                .send()
                .await
                .expect("exec");
            assert_eq!(resp.status(), 200);
            let events = read_sse(resp).await;
            assert_eq!(events.last().map(|e| e.event.as_str()), Some("exit"));
            let out: Vec<u8> = events
                .iter()
                .filter(|e| e.event == "stdout")
                .flat_map(|e| b64(&e.data))
                .collect();
            String::from_utf8_lossy(&out).into_owned()
        }
    })
    .await;
    assert!(lost.is_empty(), "SSE mode lost output: {lost:?}");
}

//! E2B polling watchers that are never polled: their queues are bounded
//! per watcher, per sandbox and per tenant, and a poll after a loss says
//! which limit made it.

use crate::harness::*;
use serde_json::{json, Value};
use std::time::Duration;

struct Envd {
    api: Api,
    id: String,
    token: String,
}

async fn e2b_sandbox(a: &Api) -> Envd {
    let r = a
        .send(
            a.http
                .post(format!("{}/sandboxes", a.base))
                .header("X-API-Key", &a.token)
                .json(&json!({"templateID": "base"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Envd {
        api: a.clone(),
        id: r.body["sandboxID"].as_str().unwrap().to_string(),
        token: r.body["envdAccessToken"].as_str().unwrap().to_string(),
    }
}

impl Envd {
    /// A unary Connect call in JSON.
    async fn call(&self, method: &str, body: Value) -> Result<Value, (u16, Value)> {
        let r = self
            .api
            .send(
                self.api
                    .http
                    .post(format!("{}/filesystem.Filesystem/{method}", self.api.base))
                    .header("E2b-Sandbox-Id", &self.id)
                    .header("E2b-Sandbox-Port", "49983")
                    .header("X-Access-Token", &self.token)
                    .json(&body),
            )
            .await;
        match r.status.as_u16() {
            200 => Ok(r.body),
            s => Err((s, r.body)),
        }
    }

    async fn watcher(&self, path: &str) -> String {
        let r = self
            .call("CreateWatcher", json!({"path": path}))
            .await
            .unwrap();
        r["watcherId"].as_str().unwrap().to_string()
    }

    /// One poll: the events, or the loss reported.
    async fn poll(&self, w: &str) -> Result<usize, String> {
        match self.call("GetWatcherEvents", json!({"watcherId": w})).await {
            Ok(v) => Ok(v["events"].as_array().map_or(0, Vec::len)),
            Err((status, v)) => {
                assert_eq!(
                    (status, v["code"].as_str()),
                    (429, Some("resource_exhausted")),
                    "{v}"
                );
                Err(v["message"].as_str().unwrap_or_default().to_string())
            }
        }
    }

    /// Creates `n` files with 200-character names in `dir`.
    async fn files(&self, dir: &str, prefix: &str, n: u32) {
        let line = format!(
            "mkdir -p {dir} && cd {dir} && for i in $(seq 1 {n}); do : > \"{prefix}$(printf '%0200d' $i)\"; done"
        );
        self.api.ok(&self.id, &line).await;
        // The events travel init -> server queue on their own.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpolled_watchers_are_bounded_per_watcher_sandbox_and_tenant() {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_WATCHER_BYTES", "65536"),
            ("WARDEN_WATCHER_SANDBOX_BYTES", "98304"),
            ("WARDEN_WATCHER_TENANT_BYTES", "131072"),
        ],
    );
    let (_, a) = server.admin().tenant("watches-a-lot", None).await;
    let sa = e2b_sandbox(&a).await;
    sa.api.ok(&sa.id, "mkdir -p /tmp/w").await;
    let w1 = sa.watcher("/tmp/w").await;
    // The control: a few events, polled, arrive whole.
    sa.files("/tmp/w", "c", 3).await;
    let n = sa.poll(&w1).await.expect("no loss for three files");
    assert!(n >= 3, "{n} events");
    // One watcher alone: its own limit.
    sa.files("/tmp/w", "a", 1000).await;
    let lost = sa.poll(&w1).await.expect_err("1,000 files overflow 64 KiB");
    assert!(lost.contains("watcher_bytes"), "{lost}");
    assert!(
        sa.poll(&w1).await.is_ok(),
        "the watcher goes on after a loss"
    );
    // Two watchers of one sandbox share its limit.
    let w2 = sa.watcher("/tmp/w").await;
    sa.files("/tmp/w", "b", 1000).await;
    let losses = [sa.poll(&w1).await, sa.poll(&w2).await];
    assert!(
        losses.iter().any(|l| l
            .as_ref()
            .is_err_and(|m| m.contains("watcher_sandbox_bytes"))),
        "{losses:?}"
    );
    // The tenant's other sandbox gets what the first leaves of its limit.
    sa.files("/tmp/w", "d", 1000).await;
    let sb = e2b_sandbox(&a).await;
    sb.api.ok(&sb.id, "mkdir -p /tmp/v").await;
    let w3 = sb.watcher("/tmp/v").await;
    sb.files("/tmp/v", "e", 1000).await;
    let lost = sb
        .poll(&w3)
        .await
        .expect_err("the tenant's limit is reached");
    assert!(lost.contains("watcher_tenant_bytes"), "{lost}");
    // Polled, the first sandbox's watchers give the room back.
    for w in [&w1, &w2] {
        let _ = sa.poll(w).await;
    }
    sb.files("/tmp/v", "f", 3).await;
    assert!(sb.poll(&w3).await.is_ok_and(|n| n >= 3));
}

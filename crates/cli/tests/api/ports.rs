//! Ports of real sandboxes, on both tiers: a server a sandbox starts on its
//! own loopback is reached through `/v1/sandboxes/{id}/ports/{port}` and,
//! for a sandbox whose ports are public, through a `<port>-<id>.<domain>`
//! host name, although the sandbox has no network at all.

use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// GETs `path` until the sandbox's server answers (502 `port_not_open`
/// until it listens).
async fn when_served(a: &Api, path: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = a.get(path).await;
        if r.status != 502 {
            return r;
        }
        assert_eq!(r.code(), "port_not_open", "{}", r.text);
        assert!(Instant::now() < deadline, "the server never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_a_sandbox_without_network_is_reached_on_both_tiers() {
    let server = Server::start_with(RuntimeDirs::private());
    let (_, a) = server.admin().tenant("ports", None).await;
    for isolation in ["native", "gvisor"] {
        let sb = a
            .sandbox(json!({"isolation": isolation, "public_ports": true}))
            .await;
        a.ok(
            &sb,
            "mkdir -p /scratch/site && echo served-by-$(uname -r) > /scratch/site/index.txt",
        )
        .await;
        let start = a
            .post(
                &format!("/v1/sandboxes/{sb}/exec"),
                json!({
                    "command": ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1",
                                "--directory", "/scratch/site"],
                    "background": true,
                }),
            )
            .await;
        assert_eq!(start.status, 202, "{}", start.text);

        let r = when_served(&a, &format!("/v1/sandboxes/{sb}/ports/8000/index.txt")).await;
        assert_eq!(r.status, 200, "{isolation}: {}", r.text);
        let kernel = a.ok(&sb, "uname -r").await;
        assert_eq!(r.text.trim(), format!("served-by-{}", kernel.trim()));

        // By host name, as E2B's get_host(8000) names it: the sandbox's
        // ports are public, so no key or token is needed.
        let by_host = reqwest::Client::new()
            .get(format!("{}/index.txt", server.url))
            .header("Host", format!("8000-{sb}.warden.test"))
            .send()
            .await
            .unwrap();
        assert_eq!(by_host.status(), 200, "{isolation}");
        assert!(by_host.text().await.unwrap().starts_with("served-by-"));

        // The control: the sandbox itself reaches nothing outside.
        let out = a
            .sh(
                &sb,
                "python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=3)'",
            )
            .await;
        assert_ne!(out["exit_code"], 0, "{isolation}: {out}");

        let d = a.delete(&format!("/v1/sandboxes/{sb}")).await;
        assert!(d.status.is_success(), "{}", d.text);
    }
}

//! Pauses that keep processes and memory (`mode: "full"`) through `/v1`:
//! on gVisor a process started before the pause is the same process after
//! the resume, with what it held only in memory, through two cycles and a
//! kill -9 of the server; its files (in memory-backed places and the
//! writable root) come back; a later snapshot of it still takes the files
//! written before the pause. The native tier refuses with the reason and
//! runs on. Another tenant cannot resume it, and a deleted one leaves no
//! checkpoint behind.

use crate::harness::*;
use serde_json::json;

/// A process whose state is only in its memory: a random value, printed
/// to /tmp/v2 only when it gets SIGUSR1, and a counter it keeps writing.
const COUNTER: &str = r#"(sh -c 'v=$(od -An -N8 -tx1 /dev/urandom | tr -d " \n"); echo $v > /tmp/v; echo $$ > /tmp/pid; trap "echo \$v > /tmp/v2" USR1; i=0; while :; do i=$((i+1)); echo $i > /tmp/n.t; mv /tmp/n.t /tmp/n; sleep 0.05; done' </dev/null >/dev/null 2>&1 &)
while ! test -s /tmp/n; do sleep 0.05; done"#;

/// Checks the counter process of [`COUNTER`] is alive, counting on from
/// at least `at_least`, and still holds the value it made; returns the
/// count.
async fn check_alive(a: &Api, sb: &str, at_least: u64) -> u64 {
    let out = a
        .ok(
            sb,
            "pid=$(cat /tmp/pid); kill -0 $pid && rm -f /tmp/v2 && kill -USR1 $pid && \
             for i in $(seq 100); do test -s /tmp/v2 && break; sleep 0.05; done; \
             cmp /tmp/v /tmp/v2 && echo same; n=$(cat /tmp/n); sleep 0.3; echo $n $(cat /tmp/n); \
             ps -eo pid,stat,args",
        )
        .await;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("same"), "{out}");
    let counts: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{out}");
    assert!(counts[0] >= at_least, "counted from scratch again: {out}");
    assert!(counts[1] > counts[0], "not counting any more: {out}");
    counts[1]
}

async fn pause_full(a: &Api, sb: &str) -> Reply {
    a.post(
        &format!("/v1/sandboxes/{sb}/pause"),
        json!({"mode": "full"}),
    )
    .await
}

async fn resumed_ok(a: &Api, sb: &str) {
    let r = a
        .post(&format!("/v1/sandboxes/{sb}/resume"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "running", "{}", r.text);
}

/// The checkpoints kept for `tenant`'s sandboxes.
fn checkpoints(server: &Server, tenant: &str) -> usize {
    let dir = server.data_dir.join("checkpoints").join(tenant);
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|s| std::fs::read_dir(s.path()).map(|c| c.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pause_on_gvisor_keeps_processes_memory_and_files() {
    let mut server = Server::start_with(RuntimeDirs::private());
    let (a_id, a) = server.admin().tenant("memory-a", None).await;
    let (_, b) = server.admin().tenant("memory-b", None).await;
    let sb = a
        .sandbox(json!({
            "isolation": "gvisor", "user": "root", "writable_root": true,
            "timeout_secs": 600,
        }))
        .await;
    a.ok(
        &sb,
        "echo home > ~/a && echo root > /usr/local/share/wr && echo s > /scratch/s",
    )
    .await;
    a.ok(&sb, COUNTER).await;
    let n = check_alive(&a, &sb, 1).await;

    // Paused: its memory is in a checkpoint, exec is refused.
    let r = pause_full(&a, &sb).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text, server.log.lock().unwrap());
    assert_eq!(r.body["state"], "paused", "{}", r.text);
    assert_eq!(checkpoints(&server, &a_id), 1);
    refused(
        &a.post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "true"}),
        )
        .await,
        409,
        "conflict",
    );
    // Another tenant cannot resume it.
    refused(
        &b.post(&format!("/v1/sandboxes/{sb}/resume"), json!({}))
            .await,
        404,
        "not_found",
    );

    // Resumed: the same process, counting on, with its value; the files.
    resumed_ok(&a, &sb).await;
    assert_eq!(checkpoints(&server, &a_id), 0, "the checkpoint is let go");
    let n = check_alive(&a, &sb, n).await;
    assert_eq!(
        a.ok(&sb, "cat ~/a /usr/local/share/wr /scratch/s").await,
        "home\nroot\ns\n"
    );
    // The files API answers, and a snapshot still takes the files written
    // before the pause (their times were kept).
    let r = a
        .get(&format!("/v1/sandboxes/{sb}/files?path=/root/a"))
        .await;
    assert_eq!(r.text, "home\n", "{}", r.text);
    let snap = a
        .post(
            &format!("/v1/sandboxes/{sb}/snapshots"),
            json!({"name": "after-memory"}),
        )
        .await;
    assert_eq!(snap.status, 201, "{}", snap.text);
    let copy = a
        .sandbox(json!({"snapshot": "after-memory", "timeout_secs": 60}))
        .await;
    assert_eq!(
        a.ok(&copy, "cat ~/a /usr/local/share/wr").await,
        "home\nroot\n"
    );

    // Second cycle across a kill -9 of the server.
    a.ok(&sb, "echo two > ~/b").await;
    let r = pause_full(&a, &sb).await;
    assert_eq!(r.status, 200, "{}", r.text);
    server.kill9();
    server.restart();
    let a = Api::new(&server.url, &a.token);
    let got = a.get(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(got.body["state"], "paused", "{}", got.text);
    resumed_ok(&a, &sb).await;
    check_alive(&a, &sb, n).await;
    assert_eq!(a.ok(&sb, "cat ~/a ~/b").await, "home\ntwo\n");

    // Deleted while paused (by the CLI): its checkpoint goes with it.
    let p = crate::cli::json_of(&crate::cli::warden(
        &server,
        Some(a.token.as_str()),
        &["sandbox", "pause", &sb, "--mode", "full", "--json"],
    ));
    assert_eq!(p["state"], "paused", "{p}");
    assert_eq!(checkpoints(&server, &a_id), 1);
    let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(checkpoints(&server, &a_id), 0);
    let outcomes: Vec<String> = audited(&a, "sandbox.pause")
        .await
        .into_iter()
        .map(|(_, _, o)| o)
        .collect();
    assert_eq!(outcomes, ["paused"; 3], "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pause_is_refused_on_the_native_tier_and_after_a_crash_mid_pause_nothing_is_left() {
    let mut server = Server::start_with(RuntimeDirs::private());
    let (a_id, a) = server.admin().tenant("memory-native", None).await;
    let sb = a.sandbox(json!({"isolation": "native"})).await;
    a.ok(&sb, "echo kept > /scratch/f").await;
    let m = refused(&pause_full(&a, &sb).await, 400, "bad_request");
    assert!(m.contains("gvisor") && m.contains("Landlock"), "{m}");
    assert_eq!(a.ok(&sb, "cat /scratch/f").await, "kept\n");
    // So is a gVisor sandbox with an egress allowlist (the host's network
    // stack is not gVisor's to save), which runs on.
    let net = a
        .sandbox(json!({
            "isolation": "gvisor",
            "network": {"mode": "allowlist", "rules": [{"host": "example.com"}]},
        }))
        .await;
    a.ok(&net, "echo kept > /scratch/f").await;
    let m = refused(&pause_full(&a, &net).await, 400, "bad_request");
    assert!(m.contains("allowlist"), "{m}");
    assert_eq!(a.ok(&net, "cat /scratch/f").await, "kept\n");

    // A checkpoint with no pause recorded (what a kill -9 in the middle of
    // one leaves) is deleted at the next start.
    let stray = server
        .data_dir
        .join("checkpoints")
        .join(&a_id)
        .join(&sb)
        .join("snp_00000000000000000000000000");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("checkpoint.img"), b"half").unwrap();
    server.kill9();
    server.restart();
    assert!(!stray.exists(), "a stray checkpoint survived the start-up");
}

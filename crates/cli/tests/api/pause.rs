//! Pause and resume through `/v1`, on both tiers: a paused sandbox's
//! processes end, its memory and slot are freed, its files (writes,
//! changes, deletions) come back with every resume, under the same id,
//! through any number of cycles and a kill -9 of the server in between;
//! another tenant cannot touch it; a pause that cannot be kept leaves the
//! sandbox running; a paused sandbox deleted takes its files with it.

use crate::harness::*;
use crate::snapshots::blobs;
use serde_json::json;

async fn pause(a: &Api, sb: &str) -> Reply {
    a.post(&format!("/v1/sandboxes/{sb}/pause"), json!({}))
        .await
}

async fn resume(a: &Api, sb: &str) -> Reply {
    a.post(&format!("/v1/sandboxes/{sb}/resume"), json!({}))
        .await
}

async fn paused_ok(a: &Api, sb: &str) {
    let r = pause(a, sb).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "paused", "{}", r.text);
}

async fn resumed_ok(a: &Api, sb: &str) {
    let r = resume(a, sb).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["state"], "running", "{}", r.text);
    assert_eq!(r.body["id"], sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_sandboxes_keep_their_files_through_cycles_and_a_restart() {
    let mut server = Server::start_with(RuntimeDirs::private());
    let (a_id, a) = server.admin().tenant("pause-a", None).await;
    let (_, b) = server.admin().tenant("pause-b", None).await;
    let mut sandboxes = Vec::new();
    for tier in ["native", "gvisor"] {
        let sb = a
            .sandbox(json!({
                "isolation": tier, "user": "user", "writable_root": true,
                "env": {"KEPT": "env-kept"}, "labels": {"tier": tier},
                "timeout_secs": 600,
            }))
            .await;
        a.ok(
            &sb,
            "echo one > ~/a && echo t > /tmp/t && mkdir -p ~/d && echo deep > ~/d/f && \
             (sleep 600 >/dev/null 2>&1 &)",
        )
        .await;

        // Paused: not running, nothing runs, exec refused, its slot freed.
        paused_ok(&a, &sb).await;
        refused(&pause(&a, &sb).await, 409, "conflict");
        refused(
            &a.post(
                &format!("/v1/sandboxes/{sb}/exec"),
                json!({"shell": "true"}),
            )
            .await,
            409,
            "conflict",
        );
        let running = a.get("/v1/sandboxes?state=running").await;
        assert!(!running.text.contains(&sb), "{}", running.text);
        // Another tenant cannot resume, pause or delete it.
        refused(&resume(&b, &sb).await, 404, "not_found");
        refused(&pause(&b, &sb).await, 404, "not_found");
        refused(
            &b.delete(&format!("/v1/sandboxes/{sb}")).await,
            404,
            "not_found",
        );

        // Cycle 1: the files, env and labels are back; the processes ended.
        resumed_ok(&a, &sb).await;
        let out = a
            .ok(
                &sb,
                "cat ~/a /tmp/t ~/d/f; echo $KEPT; pgrep -x sleep || echo none",
            )
            .await;
        assert_eq!(out, "one\nt\ndeep\nenv-kept\nnone\n", "{tier}");
        let got = a.get(&format!("/v1/sandboxes/{sb}")).await;
        assert_eq!(got.body["labels"]["tier"], tier);
        assert_eq!(got.body["isolation"], tier);

        // Cycle 2: a change and a deletion are kept too.
        a.ok(
            &sb,
            "echo two > ~/a && rm /tmp/t && rm -r ~/d && echo new > ~/b",
        )
        .await;
        paused_ok(&a, &sb).await;
        resumed_ok(&a, &sb).await;
        let out = a
            .ok(
                &sb,
                "cat ~/a ~/b; ls /tmp; test -e ~/d && echo BACK || echo gone",
            )
            .await;
        assert_eq!(out, "two\nnew\ngone\n", "{tier}");
        a.ok(&sb, "echo three > ~/a").await;
        paused_ok(&a, &sb).await;
        sandboxes.push(sb);
    }

    // Both paused across a kill -9 of the server: still paused, and
    // resumable with everything.
    server.kill9();
    server.restart();
    let a = Api::new(&server.url, &a.token);
    for sb in &sandboxes {
        let got = a.get(&format!("/v1/sandboxes/{sb}")).await;
        assert_eq!(got.body["state"], "paused", "{}", got.text);
        resumed_ok(&a, sb).await;
        assert_eq!(a.ok(sb, "cat ~/a ~/b").await, "three\nnew\n");
    }
    // Deleted while paused: gone, with the files it kept.
    let sb = &sandboxes[0];
    paused_ok(&a, sb).await;
    assert!(blobs(&server, &a_id) > 0);
    let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let got = a.get(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(got.body["state"], "stopped", "{}", got.text);
    refused(&resume(&a, sb).await, 409, "conflict");
    let r = a.delete(&format!("/v1/sandboxes/{}", sandboxes[1])).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(blobs(&server, &a_id), 0, "no pause left any bytes");
    // Pause snapshots are not the tenant's to list.
    assert_eq!(a.get("/v1/snapshots").await.body["items"], json!([]));
    // Per tier three pauses and one refused; one more after the restart.
    assert_eq!(audited(&a, "sandbox.pause").await.len(), 9);
    // Two per tier, two after the restart, one refused (the deleted one).
    assert_eq!(audited(&a, "sandbox.resume").await.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_that_cannot_be_kept_leaves_the_sandbox_running() {
    let server = Server::start();
    let quotas = json!({"max_snapshots": 0});
    let (_, a) = server.admin().tenant("pause-quota", Some(quotas)).await;
    let sb = a.sandbox(json!({})).await;
    a.ok(&sb, "echo kept > /scratch/f").await;
    let m = refused(&pause(&a, &sb).await, 429, "quota_exceeded");
    assert!(m.contains("max_snapshots"), "{m}");
    assert_eq!(a.ok(&sb, "cat /scratch/f").await, "kept\n");
    // A memory-keeping pause is refused with the reason.
    let m = refused(
        &a.post(
            &format!("/v1/sandboxes/{sb}/pause"),
            json!({"mode": "full"}),
        )
        .await,
        400,
        "bad_request",
    );
    assert!(m.contains("filesystem"), "{m}");
    // Resuming a running sandbox answers it as it is.
    resumed_ok(&a, &sb).await;
    let audit = audited(&a, "sandbox.pause").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.iter().all(|(_, _, o)| o != "paused"), "{audit:?}");
}

/// `warden sandbox pause` and `resume`, as scripts use them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pauses_and_resumes() {
    use crate::cli::{json_of, warden};
    let server = Server::start();
    let (_, a) = server.admin().tenant("pause-cli", None).await;
    let key = a.token.as_str();
    let sb = a.sandbox(json!({})).await;
    a.ok(&sb, "echo kept > /scratch/n").await;
    let p = json_of(&warden(
        &server,
        Some(key),
        &["sandbox", "pause", &sb, "--json"],
    ));
    assert_eq!(p["state"], "paused");
    let list = warden(
        &server,
        Some(key),
        &["sandbox", "list", "--state", "paused"],
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains(&sb));
    let out = warden(
        &server,
        Some(key),
        &["sandbox", "resume", &sb, "--timeout", "2m"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("running until"));
    assert_eq!(a.ok(&sb, "cat /scratch/n").await, "kept\n");

    // Two resumes at once (two clients connecting): one sandbox, running,
    // with its files; both are answered with it.
    paused_ok(&a, &sb).await;
    let (one, two) = tokio::join!(resume(&a, &sb), resume(&a, &sb));
    for r in [&one, &two] {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["state"], "running");
    }
    assert_eq!(a.ok(&sb, "cat /scratch/n").await, "kept\n");
    let running = a.get("/v1/sandboxes?state=running").await;
    assert_eq!(
        running.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        running.text
    );
    assert_eq!(audited(&a, "sandbox.resume").await.len(), 2);
}

/// `on_timeout: "pause"`: the timeout pauses the sandbox instead of
/// killing it, and a resume has the files; a bad value is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_pauses_a_sandbox_made_to_pause() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("pause-timeout", None).await;
    refused(
        &a.post("/v1/sandboxes", json!({"on_timeout": "sleep"}))
            .await,
        400,
        "bad_request",
    );
    let sb = a
        .sandbox(json!({"on_timeout": "pause", "timeout_secs": 2}))
        .await;
    a.ok(&sb, "echo kept > /scratch/n").await;
    let got = a.get(&format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(got.body["on_timeout"], "pause");
    let started = std::time::Instant::now();
    let state = loop {
        let s = a.get(&format!("/v1/sandboxes/{sb}")).await.body["state"].clone();
        if s != "running" || started.elapsed().as_secs() > 30 {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(state, "paused");
    let audit = audited_at_least(&a, "sandbox.pause", 1).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "system");
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/resume"),
            json!({"timeout_secs": 60}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(a.ok(&sb, "cat /scratch/n").await, "kept\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_resumes_a_sandbox_made_to_resume_on_traffic() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("pause-auto", None).await;
    let (_, b) = server.admin().tenant("pause-auto-b", None).await;
    let auto = a.sandbox(json!({"auto_resume": true})).await;
    let plain = a.sandbox(json!({})).await;
    for sb in [&auto, &plain] {
        a.ok(sb, "echo kept > /scratch/n").await;
        paused_ok(&a, sb).await;
    }
    assert_eq!(
        a.get(&format!("/v1/sandboxes/{auto}")).await.body["auto_resume"],
        true
    );
    // Another tenant's request neither reaches nor wakes it.
    let r = b
        .post(
            &format!("/v1/sandboxes/{auto}/exec"),
            json!({"command": ["true"]}),
        )
        .await;
    refused(&r, 404, "not_found");
    let got = a.get(&format!("/v1/sandboxes/{auto}")).await;
    assert_eq!(got.body["state"], "paused");
    // Its tenant's exec resumes it and runs on it, files and all.
    assert_eq!(a.ok(&auto, "cat /scratch/n").await, "kept\n");
    assert_eq!(
        a.get(&format!("/v1/sandboxes/{auto}")).await.body["state"],
        "running"
    );
    // Control: one made without it stays paused and says so.
    let r = a
        .post(
            &format!("/v1/sandboxes/{plain}/exec"),
            json!({"command": ["true"]}),
        )
        .await;
    refused(&r, 409, "conflict");
    let audit = audited(&a, "sandbox.resume").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    for sb in [&auto, &plain] {
        a.delete(&format!("/v1/sandboxes/{sb}")).await;
    }
}

/// What a sandbox changes right after a resume (in the same tick of the
/// clock as its restore, where it can) in ways that leave a file looking
/// as it was: rewritten in place to the same size with its modification
/// time put back, renamed with its directory, deleted, chmod-ed; and a
/// file it leaves alone.
const AFTER_RESUME: &str = r#"python3 - <<'PY'
import os
st = os.stat("/scratch/same")
with open("/scratch/same", "r+") as f:
    f.write("BBBB")
os.utime("/scratch/same", ns=(st.st_atime_ns, st.st_mtime_ns))
os.rename("/scratch/dir", "/scratch/moved")
os.remove("/scratch/gone")
os.chmod("/scratch/mode", 0o600)
open("/scratch/new", "w").write("new")
PY"#;

/// Files snapshots have read and reused so far (`/metrics`).
async fn snapshot_files(server: &Server) -> (u64, u64) {
    let m = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |how: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("warden_snapshot_files_total{{how=\"{how}\"}} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    (count("read"), count("reused"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_sandbox_pauses_again_with_every_change_made_since() {
    let server = Server::start_with(RuntimeDirs::private());
    let (a_id, a) = server.admin().tenant("pause-again", None).await;
    for tier in ["native", "gvisor"] {
        let sb = a
            .sandbox(json!({"isolation": tier, "timeout_secs": 600}))
            .await;
        a.ok(
            &sb,
            "head -c 3000000 /dev/urandom > /scratch/big && sha256sum /scratch/big > /tmp/big.sum \
             && printf AAAA > /scratch/same && mkdir /scratch/dir && printf y > /scratch/dir/y \
             && printf g > /scratch/gone && printf m > /scratch/mode && chmod 644 /scratch/mode",
        )
        .await;
        paused_ok(&a, &sb).await;
        resumed_ok(&a, &sb).await;
        a.ok(&sb, AFTER_RESUME).await;
        // The next pause takes the untouched files (the big one and its
        // sum) from the pause it was resumed from, and reads every change.
        let before = snapshot_files(&server).await;
        paused_ok(&a, &sb).await;
        let after = snapshot_files(&server).await;
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (4, 2),
            "{tier}: files read and reused"
        );
        resumed_ok(&a, &sb).await;
        let out = a
            .ok(
                &sb,
                "sha256sum -c /tmp/big.sum; cat /scratch/same /scratch/moved/y /scratch/new; echo; \
                 python3 -c 'import os; print(*sorted(os.listdir(\"/scratch\")), sep=\"\\n\"); \
                 print(oct(os.stat(\"/scratch/mode\").st_mode & 0o777))'",
            )
            .await;
        assert_eq!(
            out, "/scratch/big: OK\nBBBBynew\nbig\nmode\nmoved\nnew\nsame\n0o600\n",
            "{tier}"
        );
        // Its base goes with it.
        let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(
            blobs(&server, &a_id),
            0,
            "{tier}: nothing kept after the delete"
        );
    }
}

/// 2,000 files named `/scratch/d/f1` to `/scratch/d/f2000`: remembered,
/// they cost the server 128 bytes and their path each, 286,893 bytes.
const TWO_THOUSAND_FILES: &str = "mkdir /scratch/d && cd /scratch/d && i=1; \
    while [ $i -le 2000 ]; do echo $i > f$i; i=$((i+1)); done";
const REMEMBERED: usize = 286_893;

/// A JSON-mode exec printing 200,000 bytes, which it holds as 400,000.
const PRINT_200K: &str = "printf '%200000s' | tr ' ' x";

/// Files read and reused by the pause of `sb` (which first writes one).
async fn pause_reads(server: &Server, a: &Api, sb: &str) -> (u64, u64) {
    a.ok(sb, "echo more > /scratch/more").await;
    let before = snapshot_files(server).await;
    paused_ok(a, sb).await;
    let after = snapshot_files(server).await;
    (after.0 - before.0, after.1 - before.1)
}

/// What a resumed sandbox remembers of its restored files (so that its
/// next pause reads only what changed) is the server's memory: charged
/// while the sandbox runs, to the tenant's share (`base_tenant_bytes`)
/// and to the server's total for tenants' buffers (`buffers_total_bytes`),
/// and given back when it pauses or ends. A sandbox that finds no room
/// remembers nothing: it runs as well, and its next pause reads every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_resumed_sandbox_remembers_is_charged_and_bounded() {
    // The tenant's share has room for one sandbox's 2,000 files, not two;
    // the server's total for them and 313,107 bytes more.
    let server = Server::start_env(
        RuntimeDirs::private(),
        &[
            ("WARDEN_BASE_TENANT_BYTES", "400000"),
            ("WARDEN_BUFFERS_TOTAL_BYTES", "600000"),
            ("WARDEN_EXEC_OUTPUT_BYTES", "262144"),
        ],
    );
    let (_, a) = server.admin().tenant("base-charged", None).await;
    let one = a.sandbox(json!({"timeout_secs": 600})).await;
    a.ok(&one, TWO_THOUSAND_FILES).await;
    paused_ok(&a, &one).await;
    resumed_ok(&a, &one).await;
    // What it remembers is taken from the server's total: an exec that
    // would hold 400,000 bytes keeps what is left, half a byte a byte.
    let r = a.sh(&one, PRINT_200K).await;
    assert_eq!(r["truncated_by"], "buffers_total_bytes", "{r}");
    let kept = r["stdout"].as_str().map_or(0, str::len);
    assert_eq!(kept, (600_000 - REMEMBERED) / 2, "{}", r["truncated_by"]);

    // A second sandbox of the tenant's finds no room in its share.
    let two = a.sandbox(json!({"timeout_secs": 600})).await;
    a.ok(&two, TWO_THOUSAND_FILES).await;
    paused_ok(&a, &two).await;
    resumed_ok(&a, &two).await;
    assert_eq!(
        a.ok(&two, "cat /scratch/d/f1999").await,
        "1999\n",
        "it runs as well"
    );
    assert_eq!(pause_reads(&server, &a, &two).await, (2001, 0));
    // The first, charged, reads only what changed; its pause lets go of
    // the charge, so the second now has room.
    assert_eq!(pause_reads(&server, &a, &one).await, (1, 2000));
    resumed_ok(&a, &two).await;
    assert_eq!(pause_reads(&server, &a, &two).await, (1, 2000));

    // Every charge is given back when the sandboxes end.
    resumed_ok(&a, &two).await;
    for sb in [&one, &two] {
        let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    let three = a.sandbox(json!({})).await;
    let r = a.sh(&three, PRINT_200K).await;
    assert_eq!(r["truncated"], false, "{}", r["truncated_by"]);
    assert_eq!(r["stdout"].as_str().map_or(0, str::len), 200_000);
}

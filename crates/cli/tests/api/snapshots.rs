//! Snapshots through `/v1`: a sandbox's files (its writable root's changes
//! included) taken while it runs and put into new sandboxes on both tiers,
//! with their modes, times, links, deletions and contents; stored once per
//! tenant; bounded by the tenant's quotas and the operator's size limit;
//! invisible to other tenants; and nothing left of one cut short by a
//! kill -9.

use crate::harness::*;
use serde_json::json;
use std::path::Path;

/// The tenant's stored blobs (one file each in the local object store).
pub fn blobs(server: &Server, tenant: &str) -> usize {
    let dir = server
        .data_dir
        .join("objects/tenants")
        .join(tenant)
        .join("blobs");
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn manifests(server: &Server, tenant: &str) -> usize {
    let dir = server
        .data_dir
        .join("objects/tenants")
        .join(tenant)
        .join("snapshots");
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

async fn destroy(a: &Api, sb: &str) {
    let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
    assert!(r.status.as_u16() < 300, "{}", r.text);
}

/// What a sandbox writes before its snapshot: files in its home, a
/// directory of its own with a private file, a link, an executable with an
/// old modification time, a file in /scratch, a read-only directory with
/// an old time and a file in it and, under a writable root, changes to
/// the image (a new file, a deleted one).
const WRITE: &str = r#"set -e
printf 'hello' > /home/user/a.txt
mkdir -p /home/user/d/e && printf 'secret' > /home/user/d/e/p.txt && chmod 600 /home/user/d/e/p.txt
ln -s d/e/p.txt /home/user/link
printf '#!/bin/sh\necho ran\n' > /home/user/run.sh && chmod 755 /home/user/run.sh && touch -d @1000000000 /home/user/run.sh
printf 'scratch' > /scratch/s.txt
mkdir -p /usr/local/share/warden-test && printf 'in the image' > /usr/local/share/warden-test/x
rm /usr/local/share/warden-test-gone
cp /home/user/a.txt /home/user/same.txt
head -c 5242887 /dev/urandom > /scratch/big && sha256sum /scratch/big > /scratch/big.sum
mkdir /scratch/ro && printf 'kept' > /scratch/ro/f && touch -d @1100000000 /scratch/ro && chmod 555 /scratch/ro
"#;

/// Checks a sandbox made from the snapshot holds what [`WRITE`] left
/// (a file of several chunks byte for byte: they are sent several at a
/// time).
async fn check_restored(a: &Api, sb: &str) {
    assert_eq!(
        a.ok(sb, "sha256sum -c /scratch/big.sum").await,
        "/scratch/big: OK\n"
    );
    let out = a
        .ok(
            sb,
            "cat /home/user/a.txt; echo; cat /home/user/link; echo; /home/user/run.sh; \
             cat /scratch/s.txt; echo; cat /usr/local/share/warden-test/x; echo; \
             cat /scratch/ro/f; echo; \
             test -e /usr/local/share/warden-test-gone && echo BACK || echo gone; \
             tail -n 1 /usr/lib/os-release; \
             python3 -c 'import os; s=os.stat(\"/home/user/d/e/p.txt\"); r=os.stat(\"/home/user/run.sh\"); \
             print(oct(s.st_mode & 0o777), int(r.st_mtime), os.readlink(\"/home/user/link\")); \
             d=os.stat(\"/scratch/ro\"); print(oct(d.st_mode & 0o777), int(d.st_mtime))'",
        )
        .await;
    assert_eq!(
        out,
        "hello\nsecret\nran\nscratch\nin the image\nkept\ngone\nWARDEN_TEST=1\n0o600 1000000000 d/e/p.txt\n0o555 1100000000\n",
        "restored files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_carry_a_sandboxs_files_into_new_sandboxes_on_both_tiers() {
    let server = Server::start_with(RuntimeDirs::private());
    let (a_id, a) = server.admin().tenant("snap-a", None).await;
    let (_, b) = server.admin().tenant("snap-b", None).await;
    for tier in ["native", "gvisor"] {
        // Root in the sandbox, so it may also delete a file of the image.
        let src = a
            .sandbox(json!({"isolation": tier, "writable_root": true, "user": "root"}))
            .await;
        a.ok(
            &src,
            "mkdir -p /usr/local/share && printf x > /usr/local/share/warden-test-gone && \
             echo WARDEN_TEST=1 >> /usr/lib/os-release",
        )
        .await;
        // Taken as the image would have it: the file to delete belongs to
        // the base of the sandbox made from a first snapshot.
        let base = a
            .post(&format!("/v1/sandboxes/{src}/snapshots"), json!({}))
            .await;
        assert_eq!(base.status, 201, "{tier}: {}", base.text);
        let base_id = base.body["id"].as_str().unwrap().to_string();
        let mid = a.sandbox(json!({"snapshot": base_id})).await;
        a.ok(&mid, "mkdir -p /home/user").await;
        a.ok(&mid, WRITE).await;

        let r = a
            .post(
                &format!("/v1/sandboxes/{mid}/snapshots"),
                json!({"name": format!("work-{tier}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{tier}: {}", r.text);
        let snap = r.body["id"].as_str().unwrap().to_string();
        assert_eq!(r.body["state"], "ready");
        assert_eq!(r.body["isolation"], tier);
        assert_eq!(r.body["writable_root"], true);
        assert!(r.body["files"].as_u64().unwrap() >= 6, "{}", r.text);
        // The source keeps running, files and all.
        assert_eq!(a.ok(&mid, "cat /home/user/a.txt").await, "hello");

        // Two sandboxes from it (by id and by name), each with the files.
        let one = a.sandbox(json!({"snapshot": snap})).await;
        let two = a.sandbox(json!({"snapshot": format!("work-{tier}")})).await;
        for sb in [&one, &two] {
            check_restored(&a, sb).await;
        }
        let got = a.get(&format!("/v1/sandboxes/{one}")).await;
        assert_eq!(got.body["snapshot"], snap.as_str(), "{}", got.text);
        assert_eq!(got.body["isolation"], tier);
        // What one writes, the other does not see.
        a.ok(&one, "printf changed > /home/user/a.txt").await;
        assert_eq!(a.ok(&two, "cat /home/user/a.txt").await, "hello");

        // Another tenant cannot name it, by id or by name.
        for name in [snap.as_str(), &format!("work-{tier}")] {
            refused(
                &b.get(&format!("/v1/snapshots/{name}")).await,
                404,
                "not_found",
            );
            refused(
                &b.post("/v1/sandboxes", json!({"snapshot": name})).await,
                404,
                "not_found",
            );
            refused(
                &b.delete(&format!("/v1/snapshots/{name}")).await,
                404,
                "not_found",
            );
        }
        // Nor snapshot the first tenant's sandbox.
        refused(
            &b.post(&format!("/v1/sandboxes/{mid}/snapshots"), json!({}))
                .await,
            404,
            "not_found",
        );

        // A snapshot fixes the image and the user.
        let m = refused(
            &a.post(
                "/v1/sandboxes",
                json!({"snapshot": snap, "user": "sandbox"}),
            )
            .await,
            400,
            "bad_request",
        );
        assert!(m.contains("user"), "{m}");

        // Deleted: the sandboxes made from it keep their files.
        let r = a.delete(&format!("/v1/snapshots/{snap}")).await;
        assert_eq!(r.status, 204, "{}", r.text);
        refused(
            &a.get(&format!("/v1/snapshots/{snap}")).await,
            404,
            "not_found",
        );
        check_restored(&a, &two).await;
        for sb in [&src, &mid, &one, &two] {
            destroy(&a, sb).await;
        }
        let r = a.delete(&format!("/v1/snapshots/{base_id}")).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    // Every byte went with the snapshots.
    assert_eq!((blobs(&server, &a_id), manifests(&server, &a_id)), (0, 0));
    let audit = audited(&a, "snapshot.create").await;
    assert_eq!(audit.len(), 4, "{audit:?}");
    assert_eq!(audited(&a, "snapshot.delete").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_is_stored_once_and_snapshots_are_bounded() {
    let server = Server::start_env(
        RuntimeDirs::private(),
        &[("WARDEN_LIMITS_MAX_SNAPSHOT_BYTES", "8388608")],
    );
    let quotas = json!({"max_snapshots": 2, "max_storage_bytes": 6 << 20});
    let (id, a) = server.admin().tenant("snap-bounds", Some(quotas)).await;
    let sb = a.sandbox(json!({})).await;
    // Four files, two contents.
    a.ok(
        &sb,
        "head -c 1000000 /dev/urandom > /scratch/r1 && cp /scratch/r1 /tmp/r2 && \
         printf small > /home/sandbox/s1 2>/dev/null || printf small > /scratch/s1; \
         cp /scratch/s1 /scratch/s2",
    )
    .await;
    let r = a
        .post(&format!("/v1/sandboxes/{sb}/snapshots"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["files"], 4, "{}", r.text);
    assert_eq!(blobs(&server, &id), 2, "one blob per content");
    let first = r.body["id"].as_str().unwrap().to_string();
    let r = a
        .post(&format!("/v1/sandboxes/{sb}/snapshots"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        blobs(&server, &id),
        2,
        "a second snapshot of the same files"
    );
    // The tenant's snapshot count.
    let m = refused(
        &a.post(&format!("/v1/sandboxes/{sb}/snapshots"), json!({}))
            .await,
        429,
        "quota_exceeded",
    );
    assert!(m.contains("max_snapshots"), "{m}");
    let r = a.delete(&format!("/v1/snapshots/{first}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(blobs(&server, &id), 2, "still held by the other snapshot");

    // More than the operator lets one snapshot take: refused, nothing kept.
    a.ok(&sb, "head -c 9000000 /dev/urandom > /scratch/big")
        .await;
    let m = refused(
        &a.post(&format!("/v1/sandboxes/{sb}/snapshots"), json!({}))
            .await,
        413,
        "payload_too_large",
    );
    assert!(m.contains("max_snapshot_bytes"), "{m}");
    // More than the tenant's storage: refused, nothing kept.
    a.ok(
        &sb,
        "rm /scratch/big && head -c 6000000 /dev/urandom > /scratch/big",
    )
    .await;
    let m = refused(
        &a.post(&format!("/v1/sandboxes/{sb}/snapshots"), json!({}))
            .await,
        429,
        "quota_exceeded",
    );
    assert!(m.contains("max_storage_bytes"), "{m}");
    assert_eq!(blobs(&server, &id), 2, "a refused snapshot keeps nothing");
    assert_eq!(manifests(&server, &id), 1);
    let listed = a.get("/v1/snapshots").await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.text
    );
    // A snapshot too large for the new sandbox's disk is a clear refusal.
    a.ok(
        &sb,
        "rm /scratch/big && head -c 2000000 /dev/urandom > /scratch/mid",
    )
    .await;
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/snapshots"),
            json!({"name": "fits"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let m = refused(
        &a.post(
            "/v1/sandboxes",
            json!({"snapshot": "fits", "limits": {"disk_mb": 1}}),
        )
        .await,
        400,
        "bad_request",
    );
    assert!(m.contains("disk_mb"), "{m}");
    destroy(&a, &sb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_cut_short_by_kill_9_leaves_nothing() {
    let mut server = Server::start_with(RuntimeDirs::private());
    let (id, a) = server.admin().tenant("snap-kill", None).await;
    let sb = a.sandbox(json!({"limits": {"disk_mb": 1024}})).await;
    a.ok(
        &sb,
        "for i in $(seq 1 400); do head -c 1000000 /dev/urandom > /scratch/f$i; done",
    )
    .await;
    let taking = tokio::spawn({
        let a = a.clone();
        async move {
            a.post(&format!("/v1/sandboxes/{sb}/snapshots"), json!({}))
                .await
        }
    });
    // Kill it once blobs are being stored.
    let started = std::time::Instant::now();
    while blobs(&server, &id) < 20 && started.elapsed().as_secs() < 60 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        blobs(&server, &id) >= 20,
        "the snapshot never started storing"
    );
    server.kill9();
    let _ = taking.await;
    server.restart();
    let a = Api::new(&server.url, &a.token);
    let listed = a.get("/v1/snapshots").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    assert_eq!(blobs(&server, &id), 0, "the blobs it had stored are gone");
    let dir = server.data_dir.join("objects/tenants").join(&id);
    assert!(
        !Path::new(&dir).join("snapshots").exists() || manifests(&server, &id) == 0,
        "no manifest left"
    );
}

/// `warden snapshot` and `warden sandbox create --snapshot`, as scripts
/// use them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_lists_starts_from_and_deletes_snapshots() {
    use crate::cli::{json_of, warden};
    let server = Server::start();
    let (_, a) = server.admin().tenant("snap-cli", None).await;
    let key = a.token.as_str();
    let sb = json_of(&warden(
        &server,
        Some(key),
        &["sandbox", "create", "--json"],
    ));
    let sid = sb["id"].as_str().unwrap();
    // A small snapshot (its directories are dated in the batch that
    // writes its files).
    a.ok(
        sid,
        "mkdir -p /scratch/w && echo kept > /scratch/w/n && touch -d @1200000000 /scratch/w",
    )
    .await;
    let snap = json_of(&warden(
        &server,
        Some(key),
        &["snapshot", "create", sid, "--name", "base", "--json"],
    ));
    assert_eq!(snap["state"], "ready");
    assert_eq!(snap["files"], 1);
    let list = warden(&server, Some(key), &["snapshot", "list"]);
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.contains("base") && list.contains("ready"), "{list}");
    let from = json_of(&warden(
        &server,
        Some(key),
        &["sandbox", "create", "--snapshot", "base", "--json"],
    ));
    assert_eq!(from["snapshot"], snap["id"]);
    let out = warden(
        &server,
        Some(key),
        &[
            "exec",
            from["id"].as_str().unwrap(),
            "--",
            "cat",
            "/scratch/w/n",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
    let dated = a
        .ok(
            from["id"].as_str().unwrap(),
            "python3 -c 'import os; print(int(os.stat(\"/scratch/w\").st_mtime))'",
        )
        .await;
    assert_eq!(dated, "1200000000\n");
    let out = warden(&server, Some(key), &["snapshot", "rm", "base"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = warden(&server, Some(key), &["snapshot", "show", "base"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_starts_with_the_sources_files_and_both_go_their_own_way() {
    use crate::cli::warden;
    let server = Server::start_with(RuntimeDirs::private());
    let (a_id, a) = server.admin().tenant("fork-a", None).await;
    let (_, b) = server.admin().tenant("fork-b", None).await;
    for tier in ["native", "gvisor"] {
        let src = a
            .sandbox(json!({
                "isolation": tier, "writable_root": true, "user": "root",
                "env": {"GREETING": "hi"}, "labels": {"app": "x"},
            }))
            .await;
        a.ok(
            &src,
            "echo one > /scratch/a && mkdir -p /opt/w && echo two > /opt/w/b",
        )
        .await;
        let r = a
            .post(
                &format!("/v1/sandboxes/{src}/fork"),
                json!({"timeout_secs": 120}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let fork = r.body["id"].as_str().expect("an id").to_string();
        assert_ne!(fork, src);
        assert_eq!(r.body["labels"]["app"], "x");
        assert_eq!(r.body["isolation"], tier);
        assert_eq!(
            a.ok(&fork, "cat /scratch/a /opt/w/b; echo $GREETING").await,
            "one\ntwo\nhi\n",
            "{tier}"
        );
        // Each goes its own way.
        a.ok(&fork, "echo fork > /scratch/a").await;
        a.ok(&src, "echo src > /opt/w/b").await;
        assert_eq!(a.ok(&src, "cat /scratch/a /opt/w/b").await, "one\nsrc\n");
        assert_eq!(a.ok(&fork, "cat /scratch/a /opt/w/b").await, "fork\ntwo\n");
        // Another tenant's fork of it is not found.
        let r = b
            .post(&format!("/v1/sandboxes/{src}/fork"), json!({}))
            .await;
        refused(&r, 404, "not_found");
        for sb in [&src, &fork] {
            destroy(&a, sb).await;
        }
    }
    // The CLI forks too; nothing of a fork's files is kept or listed.
    let src = a.sandbox(json!({})).await;
    a.ok(&src, "echo cli > /scratch/c").await;
    let out = warden(&server, Some(&a.token), &["sandbox", "fork", &src]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fork = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(a.ok(&fork, "cat /scratch/c").await, "cli\n");
    for sb in [&src, &fork] {
        destroy(&a, sb).await;
    }
    let listed = a.get("/v1/snapshots").await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(manifests(&server, &a_id), 0);
    assert_eq!(blobs(&server, &a_id), 0);
}

/// What a sandbox's confinement looks like from inside: capabilities,
/// no_new_privs, seccomp, and three escapes that must fail (a new user
/// namespace, a mount, a write to the image).
const CONFINEMENT: &str =
    "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; \
     unshare -U true 2>/dev/null && echo UNSHARED || echo no-unshare; \
     mount -t tmpfs x /tmp 2>/dev/null && echo MOUNTED || echo no-mount; \
     touch /usr/bin/planted 2>/dev/null && echo PLANTED || echo no-plant; id -u";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_resumed_and_forked_sandboxes_are_confined_as_fresh_ones() {
    let server = Server::start_with(RuntimeDirs::private());
    let (_, a) = server.admin().tenant("confined", None).await;
    for tier in ["native", "gvisor"] {
        let fresh = a.sandbox(json!({"isolation": tier})).await;
        let expected = a.ok(&fresh, CONFINEMENT).await;
        // (gVisor's Sentry has user namespaces of its own; the host's
        // seccomp refuses them natively.)
        assert!(
            expected.ends_with("no-mount\nno-plant\n1000\n"),
            "{tier}: {expected}"
        );
        if tier == "native" {
            assert!(
                expected.contains("NoNewPrivs:\t1\nSeccomp:\t2\n"),
                "{expected}"
            );
            assert!(expected.contains("no-unshare"), "{expected}");
        }
        // A planted file that would matter if the restore ran with more
        // rights than the sandbox: a set-user-id copy of a shell.
        a.ok(&fresh, "cp /bin/sh /scratch/sh && chmod 4755 /scratch/sh")
            .await;
        let snap = a
            .post(&format!("/v1/sandboxes/{fresh}/snapshots"), json!({}))
            .await;
        assert_eq!(snap.status, 201, "{}", snap.text);
        let restored = a.sandbox(json!({"snapshot": snap.body["id"]})).await;
        let forked = a
            .post(&format!("/v1/sandboxes/{fresh}/fork"), json!({}))
            .await
            .body["id"]
            .as_str()
            .expect("a fork")
            .to_string();
        let r = a
            .post(&format!("/v1/sandboxes/{fresh}/pause"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = a
            .post(&format!("/v1/sandboxes/{fresh}/resume"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        for (what, sb) in [
            ("restored", &restored),
            ("forked", &forked),
            ("resumed", &fresh),
        ] {
            assert_eq!(a.ok(sb, CONFINEMENT).await, expected, "{tier} {what}");
            // The planted set-user-id shell gives nothing: still uid 1000.
            assert_eq!(
                a.ok(sb, "/scratch/sh -c 'id -u'").await,
                "1000\n",
                "{tier} {what}"
            );
        }
        if tier == "gvisor" {
            // Paused with its memory and restored: the same again.
            let r = a
                .post(
                    &format!("/v1/sandboxes/{fresh}/pause"),
                    json!({"mode": "full"}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let r = a
                .post(&format!("/v1/sandboxes/{fresh}/resume"), json!({}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(a.ok(&fresh, CONFINEMENT).await, expected, "full resume");
            assert_eq!(a.ok(&fresh, "/scratch/sh -c 'id -u'").await, "1000\n");
        }
        for sb in [&restored, &forked, &fresh] {
            destroy(&a, sb).await;
        }
        let r = a
            .delete(&format!(
                "/v1/snapshots/{}",
                snap.body["id"].as_str().unwrap_or_default()
            ))
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
}

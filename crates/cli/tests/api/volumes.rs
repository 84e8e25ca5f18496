//! Volumes through `/v1`: a tenant's named file systems outlive the
//! sandboxes that mount them, on both tiers and across a server restart or
//! kill; they are bounded by their size and by the tenant's quotas; another
//! tenant cannot name them; and nothing of them stays mounted once no
//! sandbox holds them.

use crate::harness::*;
use serde_json::json;
use std::path::Path;

/// Mount points under the server's volume store (`<data>/volumes/mnt`).
fn mounted(server: &Server) -> Vec<String> {
    let mnt = server.data_dir.join("volumes/mnt");
    let mnt = std::fs::canonicalize(&mnt).unwrap_or(mnt);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(&mnt))
        .map(String::from)
        .collect()
}

/// Loop devices backed by the server's volume images.
fn loops(server: &Server) -> Vec<String> {
    let dir = server.data_dir.join("volumes/images");
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(|f| Path::new(f.trim()).starts_with(&dir))
        .collect()
}

async fn destroy(a: &Api, sb: &str) {
    let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
    assert!(r.status.as_u16() < 300, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_outlive_sandboxes_and_stay_their_tenants() {
    let mut server = Server::start_with(RuntimeDirs::private());
    let quotas = json!({"max_volumes": 3, "max_storage_bytes": 160 << 20});
    let (_, a) = server.admin().tenant("vols-a", Some(quotas)).await;
    let (b_id, b) = server.admin().tenant("vols-b", None).await;

    // Create: checked names and sizes, one name per tenant.
    let r = a
        .post(
            "/v1/volumes",
            json!({"name": "data", "size_bytes": 32 << 20}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["size_bytes"], 32 << 20);
    assert_eq!(r.body["in_use"], false);
    refused(
        &a.post("/v1/volumes", json!({"name": "data"})).await,
        409,
        "conflict",
    );
    refused(
        &a.post("/v1/volumes", json!({"name": "../x"})).await,
        400,
        "bad_request",
    );
    let m = refused(
        &a.post(
            "/v1/volumes",
            json!({"name": "tiny", "size_bytes": 1 << 20}),
        )
        .await,
        400,
        "bad_request",
    );
    assert!(m.contains("size_bytes"), "{m}");

    // Written on one tier as uid 1000, read and owned alike on the other:
    // the ids on the volume are the sandbox's own, whatever host range.
    // (Python's stat: the gVisor release here refuses coreutils' statx.)
    let mount = |tier: &str, ro: bool| json!({"isolation": tier, "volumes": [{"volume": "data", "path": "/data", "read_only": ro}]});
    for (tier, other) in [("native", "gvisor"), ("gvisor", "native")] {
        let w = a.sandbox(mount(tier, false)).await;
        let shown = a.get(&format!("/v1/sandboxes/{w}")).await;
        assert_eq!(
            shown.body["volumes"][0]["volume"],
            id.as_str(),
            "{}",
            shown.text
        );
        assert_eq!(
            a.get(&format!("/v1/volumes/{id}")).await.body["in_use"],
            true
        );
        a.ok(&w, &format!("echo from-{tier} > /data/{tier}.txt"))
            .await;
        destroy(&a, &w).await;
        let r = a.sandbox(mount(other, true)).await;
        assert_eq!(
            a.ok(
                &r,
                &format!("cat /data/{tier}.txt; python3 -c 'import os; print(os.stat(\"/data/{tier}.txt\").st_uid)'")
            )
            .await,
            format!("from-{tier}\n1000\n"),
            "written on {tier}, read on {other}"
        );
        // Read-only means read-only; the control is the read-write mount above.
        let v = a.sh(&r, "echo x > /data/ro.txt").await;
        assert!(
            v["stderr"]
                .as_str()
                .unwrap()
                .contains("Read-only file system"),
            "{other}: {v}"
        );
        destroy(&a, &r).await;
    }

    // Its size is a hard limit inside the sandbox.
    let sb = a.sandbox(mount("native", false)).await;
    let v = a
        .sh(
            &sb,
            "dd if=/dev/zero of=/data/fill bs=1M count=64 2>&1; rm -f /data/fill",
        )
        .await;
    assert!(
        v["stdout"].as_str().unwrap().contains("No space left"),
        "{v}"
    );
    // In use: not deleted.
    refused(&a.delete("/v1/volumes/data").await, 409, "conflict");
    destroy(&a, &sb).await;

    // The native tier takes a read-write volume under a writable root
    // (E2B's layout); gVisor, whose overlay would swallow its writes, not.
    let e2b = a
        .sandbox(json!({"user": "user", "writable_root": true,
                        "volumes": [{"volume": "data", "path": "/home/user/data"}]}))
        .await;
    assert_eq!(a.ok(&e2b, "cat ~/data/native.txt").await, "from-native\n");
    destroy(&a, &e2b).await;
    let m = refused(
        &a.post(
            "/v1/sandboxes",
            json!({"isolation": "gvisor", "writable_root": true,
                "volumes": [{"volume": "data", "path": "/data"}]}),
        )
        .await,
        400,
        "bad_request",
    );
    assert!(m.contains("writable root"), "{m}");
    for path in ["/input", "/proc/x", "/etc/x", "data"] {
        refused(
            &a.post(
                "/v1/sandboxes",
                json!({"volumes": [{"volume": "data", "path": path}]}),
            )
            .await,
            400,
            "bad_request",
        );
    }

    // Another tenant cannot name it, by name or by id; its own "data" is
    // another, empty volume.
    for name in ["data", id.as_str()] {
        refused(
            &b.get(&format!("/v1/volumes/{name}")).await,
            404,
            "not_found",
        );
        refused(
            &b.delete(&format!("/v1/volumes/{name}")).await,
            404,
            "not_found",
        );
        refused(
            &b.post(
                "/v1/sandboxes",
                json!({"volumes": [{"volume": name, "path": "/data"}]}),
            )
            .await,
            404,
            "not_found",
        );
    }
    let r = b
        .post(
            "/v1/volumes",
            json!({"name": "data", "size_bytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sb = b
        .sandbox(json!({"volumes": [{"volume": "data", "path": "/data"}]}))
        .await;
    assert_eq!(
        a.get("/v1/volumes").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(b.ok(&sb, "ls -A /data | wc -l").await, "0\n");
    destroy(&b, &sb).await;

    // Quotas: three volumes, and their sizes in the storage quota.
    refused(
        &a.post(
            "/v1/volumes",
            json!({"name": "big", "size_bytes": 150 << 20}),
        )
        .await,
        429,
        "quota_exceeded",
    );
    for n in ["two", "three"] {
        let r = a
            .post("/v1/volumes", json!({"name": n, "size_bytes": 16 << 20}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let m = refused(
        &a.post(
            "/v1/volumes",
            json!({"name": "four", "size_bytes": 16 << 20}),
        )
        .await,
        429,
        "quota_exceeded",
    );
    assert!(m.contains("max_volumes"), "{m}");
    assert_eq!(a.delete("/v1/volumes/three").await.status, 204);

    // Nothing stays mounted once no sandbox holds a volume.
    assert!(mounted(&server).is_empty(), "{:?}", mounted(&server));
    assert!(loops(&server).is_empty(), "{:?}", loops(&server));

    // Killed while a sandbox holds it: the next server clears the mount,
    // and the bytes are all there.
    let held = a.sandbox(mount("native", false)).await;
    a.ok(&held, "echo before-kill > /data/k.txt").await;
    assert_eq!(mounted(&server).len(), 1);
    server.kill9();
    server.restart();
    let a = Api::new(&server.url, &a.token);
    assert!(mounted(&server).is_empty(), "{:?}", mounted(&server));
    let sb = a.sandbox(mount("native", false)).await;
    assert_eq!(
        a.ok(&sb, "cat /data/k.txt /data/native.txt").await,
        "before-kill\nfrom-native\n"
    );
    destroy(&a, &sb).await;
    assert_eq!(a.delete(&format!("/v1/volumes/{id}")).await.status, 204);
    refused(&a.get(&format!("/v1/volumes/{id}")).await, 404, "not_found");
    let created = audited(&a, "volume.create").await;
    assert!(
        created.iter().any(|(_, t, o)| t == &id && o == "ok"),
        "{created:?}"
    );
    assert!(audited(&a, "volume.delete")
        .await
        .iter()
        .any(|(_, t, _)| t == &id));

    // A deleted tenant's volumes go with it, bytes and all.
    let images = |s: &Server| {
        std::fs::read_dir(s.data_dir.join("volumes/images"))
            .unwrap()
            .count()
    };
    assert_eq!(images(&server), 2, "a's \"two\" and b's \"data\"");
    let r = server
        .admin()
        .delete(&format!("/v1/tenants/{b_id}?force=true"))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(images(&server), 1);

    server.stop();
    assert!(mounted(&server).is_empty());
    assert!(loops(&server).is_empty(), "{:?}", loops(&server));
}

/// `warden volume` and `warden sandbox create --volume`, as scripts use
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_mounts_and_deletes_volumes() {
    use crate::cli::{json_of, warden};
    let server = Server::start();
    let (_, a) = server.admin().tenant("vols-cli", None).await;
    let key = a.token.as_str();
    let v = json_of(&warden(
        &server,
        Some(key),
        &["volume", "create", "notes", "--size", "20M", "--json"],
    ));
    assert_eq!(v["size_bytes"], 20 << 20);
    let sb = json_of(&warden(
        &server,
        Some(key),
        &["sandbox", "create", "--volume", "notes:/notes", "--json"],
    ));
    let sid = sb["id"].as_str().unwrap();
    let out = warden(
        &server,
        Some(key),
        &[
            "exec",
            sid,
            "--",
            "sh",
            "-c",
            "echo kept > /notes/n; cat /notes/n",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
    let out = warden(&server, Some(key), &["volume", "rm", "notes"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("409 conflict"));
    let list = String::from_utf8_lossy(&warden(&server, Some(key), &["volume", "list"]).stdout)
        .to_string();
    assert!(list.contains("notes") && list.contains("yes"), "{list}");
    assert!(warden(&server, Some(key), &["sandbox", "delete", sid])
        .status
        .success());
    let shown = json_of(&warden(
        &server,
        Some(key),
        &["volume", "show", "notes", "--json"],
    ));
    assert_eq!(shown["in_use"], false);
    assert!(shown["used_bytes"].as_u64().unwrap() > 0);
    let out = warden(
        &server,
        Some(key),
        &["sandbox", "create", "--volume", "notes"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME:/PATH"));
    assert!(warden(&server, Some(key), &["volume", "rm", "notes"])
        .status
        .success());
    let out = warden(&server, Some(key), &["volume", "show", "notes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("404 not_found"));
}

/// A review job mounts a volume as a sandbox does: what it writes there
/// outlives it, for the next sandbox; another tenant's volume is not found
/// at submit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_jobs_write_to_volumes() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("vols-jobs", None).await;
    let (_, b) = server.admin().tenant("vols-jobs-b", None).await;
    let r = a
        .post(
            "/v1/volumes",
            json!({"name": "results", "size_bytes": 16 << 20}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let job = a
        .post(
            "/v1/reviews",
            json!({"shell": "date +%s > /results/ran-at && echo done > /output/o.txt",
                   "volumes": [{"volume": "results", "path": "/results"}]}),
        )
        .await;
    assert_eq!(job.status, 202, "{}", job.text);
    let id = job.body["id"].as_str().unwrap();
    let done = crate::reviews::wait_done(&a, id, std::time::Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let sb = a
        .sandbox(json!({"volumes": [{"volume": "results", "path": "/r", "read_only": true}]}))
        .await;
    assert_eq!(a.ok(&sb, "test -s /r/ran-at && echo yes").await, "yes\n");
    destroy(&a, &sb).await;
    // Checked at submit: another tenant's volume, a reserved path.
    refused(
        &b.post(
            "/v1/reviews",
            json!({"shell": "true", "volumes": [{"volume": "results", "path": "/r"}]}),
        )
        .await,
        404,
        "not_found",
    );
    refused(
        &a.post(
            "/v1/reviews",
            json!({"shell": "true", "volumes": [{"volume": "results", "path": "/output"}]}),
        )
        .await,
        400,
        "bad_request",
    );
    // Not in use once the job has ended.
    assert_eq!(a.delete("/v1/volumes/results").await.status, 204);
}

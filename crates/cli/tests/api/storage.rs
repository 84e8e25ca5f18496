//! Storage between tenants and across faults: the storage quota holds
//! under parallel uploads, a killed server's half-written uploads and
//! unrecorded objects are swept at the next start, and a forced tenant
//! delete leaves nothing under the tenant's prefix.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// Every file (complete or partial) under a tenant's object prefix.
fn objects_of(server: &Server, tenant: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&tenant_dir(server, tenant), &mut out);
    out.sort();
    out
}

fn tenant_dir(server: &Server, tenant: &str) -> PathBuf {
    server.data_dir.join("objects/tenants").join(tenant)
}

fn is_partial(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once('#'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Sets a file's modification time an hour back (what a dead process's
/// leftovers look like to the sweep, which spares anything newer than its
/// own start).
fn age(path: &Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(old).unwrap();
}

/// Sum of the sizes of the tenant's recorded files.
async fn stored_bytes(a: &Api) -> u64 {
    let r = a.get("/v1/files?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum()
}

/// Eight parallel 8 MiB uploads against a 10 MiB storage quota: the total
/// stored never passes the quota, and every refused upload answers 413
/// naming `max_storage_bytes` (before: all eight were stored, 64 MiB).
/// Both with a declared length (reserved up front) and streamed without
/// one (reserved as the bytes arrive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_uploads_never_exceed_the_storage_quota() {
    let server = Server::start();
    let quotas = json!({"max_storage_bytes": 10 * MIB, "max_file_bytes": 16 * MIB});
    for streamed in [false, true] {
        let name = if streamed {
            "race-streamed"
        } else {
            "race-declared"
        };
        let (_, a) = server.admin().tenant(name, Some(quotas.clone())).await;
        let uploads = (0..8).map(|i| {
            let a = a.clone();
            async move {
                let rb = a.req(Method::POST, &format!("/v1/files?name=part{i}.bin"));
                let rb = if streamed {
                    // No Content-Length: 8 chunks of 1 MiB, chunked encoding.
                    let chunks = futures::stream::iter(
                        (0..8).map(|_| Ok::<_, std::io::Error>(vec![b'x'; MIB])),
                    );
                    rb.body(reqwest::Body::wrap_stream(chunks))
                } else {
                    rb.body(vec![b'x'; 8 * MIB])
                };
                a.send(rb).await
            }
        });
        let replies = futures::future::join_all(uploads).await;
        let mut stored = 0;
        for r in &replies {
            match r.status.as_u16() {
                201 => stored += 1,
                413 => {
                    assert_eq!(r.code(), "payload_too_large", "{}", r.text);
                    assert!(r.text.contains("max_storage_bytes"), "{}", r.text);
                }
                _ => panic!(
                    "neither stored nor refused for the quota: {} {}",
                    r.status, r.text
                ),
            }
        }
        let total = stored_bytes(&a).await;
        assert!(
            total <= 10 * MIB as u64,
            "{name}: {total} bytes stored against a 10 MiB quota"
        );
        assert_eq!(total, stored * 8 * MIB as u64);
        if !streamed {
            assert_eq!(stored, 1, "exactly one 8 MiB file fits in 10 MiB");
        }
        // Refused uploads hold nothing: the rest of the quota is usable.
        let left = 10 * MIB - total as usize;
        let r = a
            .send(
                a.req(Method::POST, "/v1/files?name=rest.bin")
                    .body(vec![b'y'; left]),
            )
            .await;
        assert_eq!(r.status, 201, "{name}: the rest of the quota: {}", r.text);
        let r = a
            .send(
                a.req(Method::POST, "/v1/files?name=over.bin")
                    .body(vec![b'z'; 1]),
            )
            .await;
        assert_eq!(r.status, 413, "{name}: one byte past the quota: {}", r.text);
        assert!(r.text.contains("max_storage_bytes"), "{}", r.text);
    }
}

/// A server killed (SIGKILL) in the middle of an upload leaves its partial
/// object, and a process killed between writing an object and recording
/// it leaves an object no row points at. The next start removes both,
/// keeps every recorded file, and the tenant's quota is whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_uploads_leftovers_are_swept_at_start() {
    let mut server = Server::start();
    let quota = 8 * MIB;
    let (tid, a) = server
        .admin()
        .tenant(
            "killed",
            Some(json!({"max_storage_bytes": quota, "max_file_bytes": quota})),
        )
        .await;
    let kept = a.upload("kept.txt", b"recorded before the kill").await;
    let kept_id = kept["id"].as_str().unwrap().to_string();

    // A slow client: 6 MiB (more than one 5 MiB part) at once, then it
    // stalls without finishing, declaring 7 MiB.
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let slow = {
        let a = a.clone();
        tokio::spawn(async move {
            let rb = a
                .req(Method::POST, "/v1/files?name=slow.bin")
                .header("content-length", (7 * MIB).to_string())
                .body(reqwest::Body::wrap_stream(rx));
            rb.send().await
        })
    };
    let mut tx = tx;
    for _ in 0..6 {
        futures::SinkExt::send(&mut tx, Ok(vec![b's'; MIB]))
            .await
            .unwrap();
    }
    let t0 = Instant::now();
    let partial = loop {
        if let Some(p) = objects_of(&server, &tid)
            .into_iter()
            .find(|p| is_partial(p))
        {
            // The first part (5 MiB) has reached the file.
            if std::fs::metadata(&p).is_ok_and(|m| m.len() >= 5 * MIB as u64) {
                break p;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no partial upload appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.kill9();
    drop(tx);
    let _ = slow.await;
    assert!(partial.exists(), "the kill left the partial object");

    // What a kill between storing an object and inserting its row leaves:
    // an object no row points at (files and outputs alike).
    let files_dir = tenant_dir(&server, &tid).join("files");
    let orphan_file = files_dir.join("file_orphanedbeforeitsrow0000");
    std::fs::write(&orphan_file, vec![b'o'; MIB]).unwrap();
    let outputs_dir = tenant_dir(&server, &tid).join("outputs");
    std::fs::create_dir_all(&outputs_dir).unwrap();
    let orphan_output = outputs_dir.join("out_orphanedbeforeitsrow00000");
    std::fs::write(&orphan_output, b"an export's object").unwrap();
    for p in [&partial, &orphan_file, &orphan_output] {
        age(p);
    }

    server.restart();
    let a = Api::new(&server.url, &a.token);
    let left = objects_of(&server, &tid);
    let kept_path = files_dir.join(&kept_id);
    assert_eq!(
        left,
        vec![kept_path],
        "only the recorded file is left under the tenant's prefix"
    );
    // The killed upload's reservation went with it: the whole quota minus
    // the kept file can be stored again.
    let kept_size = kept["size"].as_u64().unwrap() as usize;
    let r = a
        .send(
            a.req(Method::POST, "/v1/files?name=after.bin")
                .body(vec![b'a'; quota - kept_size]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(stored_bytes(&a).await, quota as u64);
    let r = a.get(&format!("/v1/files/{kept_id}/content")).await;
    assert_eq!(r.text, "recorded before the kill");
}

/// Deleting a tenant with `force` removes everything under its prefix:
/// recorded files, objects without rows and partial uploads alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_tenant_delete_leaves_nothing_under_its_prefix() {
    let server = Server::start();
    let admin = server.admin();
    let (tid, a) = admin.tenant("leaving", None).await;
    let (other, b) = admin.tenant("staying", None).await;
    a.upload("one.txt", b"one").await;
    b.upload("theirs.txt", b"theirs").await;
    let files_dir = tenant_dir(&server, &tid).join("files");
    std::fs::write(files_dir.join("file_norow000000000000000000"), b"x").unwrap();
    std::fs::write(files_dir.join("file_halfwritten000000000000#1"), b"x").unwrap();
    assert_eq!(objects_of(&server, &tid).len(), 3);

    let r = admin.delete(&format!("/v1/tenants/{tid}?force=true")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        !tenant_dir(&server, &tid).exists(),
        "left under the prefix: {:?}",
        objects_of(&server, &tid)
    );
    // The other tenant's objects are untouched.
    assert_eq!(objects_of(&server, &other).len(), 1);
    let listed = b.get("/v1/files").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}

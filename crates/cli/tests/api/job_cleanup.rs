//! A tenant gives back the storage its review jobs hold (issue 15, item 9:
//! outputs and logs count in the tenant's storage, so the tenant must be
//! able to free it): `DELETE /v1/reviews/{id}/outputs` removes an ended
//! job's outputs and stored log, rows and objects, and keeps its record.

use crate::cli::{json_of, warden};
use crate::harness::*;
use crate::reviews::{submit, wait_done};
use serde_json::{json, Value};
use std::time::Duration;

async fn storage_used(a: &Api) -> u64 {
    let r = a.get("/v1/usage").await;
    r.body["storage_bytes"].as_u64().expect(&r.text)
}

/// Objects stored under a tenant's prefix of one kind.
fn objects(server: &Server, tenant: &str, kind: &str) -> Vec<String> {
    let dir = server
        .data_dir
        .join("objects/tenants")
        .join(tenant)
        .join(kind);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn output_bytes(done: &Value) -> u64 {
    done["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["size"].as_u64().expect("size"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_jobs_outputs_gives_its_storage_back() {
    let server = Server::start();
    let quota = 256u64 << 10;
    let (tid, a) = server
        .admin()
        .tenant("cleans-up", Some(json!({ "max_storage_bytes": quota })))
        .await;
    let (_, other) = server.admin().tenant("bystander", None).await;
    let big = json!({"shell": "echo working; head -c 200000 /dev/zero > /output/big.bin"});

    // The first job's outputs take most of the tenant's storage.
    let first = submit(&a, big.clone()).await;
    let done = wait_done(&a, &first, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["outputs_truncated"], false, "{done}");
    let held = output_bytes(&done) + done["log_bytes"].as_u64().expect("log_bytes");
    assert_eq!(storage_used(&a).await, held);
    assert_eq!(
        objects(&server, &tid, "outputs").len(),
        2,
        "big.bin and the manifest"
    );
    assert!(objects(&server, &tid, "logs").contains(&first));
    // So a second one's output no longer fits and is cut.
    let second = submit(&a, big.clone()).await;
    let done = wait_done(&a, &second, Duration::from_secs(60)).await;
    assert_eq!(done["outputs_truncated"], true, "{done}");

    // A job that has not ended keeps its outputs: 409, and nothing changed.
    let running = submit(&a, json!({"shell": "sleep 60"})).await;
    let r = a.delete(&format!("/v1/reviews/{running}/outputs")).await;
    let m = refused(&r, 409, "conflict");
    assert!(m.contains("cancel it first"), "{m}");
    let r = a
        .post(&format!("/v1/reviews/{running}/cancel"), json!({}))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    wait_done(&a, &running, Duration::from_secs(60)).await;
    // Another tenant's job is not found, and nothing of it is touched.
    let r = other.delete(&format!("/v1/reviews/{first}/outputs")).await;
    refused(&r, 404, "not_found");
    let (outputs, logs) = (
        objects(&server, &tid, "outputs"),
        objects(&server, &tid, "logs"),
    );
    assert!(logs.contains(&first) && logs.contains(&second), "{logs:?}");

    // The control: the tenant deletes the first job's outputs (through the
    // CLI, as a script would).
    let used = storage_used(&a).await;
    let r = json_of(&warden(
        &server,
        Some(&a.token),
        &["review", "delete-outputs", &first, "--json"],
    ));
    assert_eq!(
        (r["outputs"].as_u64(), r["freed_bytes"].as_u64()),
        (Some(2), Some(held))
    );
    assert_eq!(storage_used(&a).await, used - held);
    // Rows and objects are gone; the record stays and says when.
    let job = a.get(&format!("/v1/reviews/{first}")).await;
    assert_eq!(job.body["status"], "succeeded");
    assert_eq!(job.body["outputs"], json!([]));
    assert_eq!(job.body["log_bytes"], 0);
    assert!(job.body["outputs_deleted_at"].is_string(), "{}", job.text);
    assert_eq!(objects(&server, &tid, "outputs").len(), outputs.len() - 2);
    let left = objects(&server, &tid, "logs");
    assert!(!left.contains(&first) && left.contains(&second), "{left:?}");
    assert_eq!(left.len(), logs.len() - 1);
    let r = a.get(&format!("/v1/reviews/{first}/logs")).await;
    let m = refused(&r, 410, "gone");
    assert!(m.contains("deleted at"), "{m}");
    refused(
        &a.get(&format!("/v1/reviews/{first}/outputs/big.bin")).await,
        410,
        "gone",
    );
    // Deleting again frees nothing more.
    let r = a.delete(&format!("/v1/reviews/{first}/outputs")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"outputs": 0, "freed_bytes": 0}));
    // The room is back: the same job keeps its whole output now.
    let third = submit(&a, big).await;
    let done = wait_done(&a, &third, Duration::from_secs(60)).await;
    assert_eq!(done["outputs_truncated"], false, "{done}");
    // Each delete is audited with what it freed.
    let entries = audited(&a, "review.delete_outputs").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries
        .iter()
        .any(|(_, target, outcome)| target == &first
            && outcome == &format!("2 outputs, {held} bytes")));
}

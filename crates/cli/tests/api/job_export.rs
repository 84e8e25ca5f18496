//! A review job's export (issue 15, item 19): no name a sandbox writes
//! breaks it, and a failure of Warden's after the command ran never runs
//! the command again.

use crate::harness::*;
use crate::job_limits::{disk_use, gated, job_sandbox, manifest, paths, release};
use crate::reviews::{download, submit, wait_done};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_names_never_break_the_export() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("namer", None).await;
    let id = submit(
        &a,
        json!({"shell": "echo mine > /output/manifest.json; echo also > /output/manifest.agent.json; exit 4"}),
    )
    .await;
    let done = wait_done(&a, &id, Duration::from_secs(60)).await;
    // The command's own failure, run once, its exit code kept; both agent
    // files kept under names that cannot collide with Warden's manifest.
    assert_eq!(
        (
            done["status"].as_str(),
            done["attempts"].as_u64(),
            done["exit_code"].as_i64()
        ),
        (Some("failed"), Some(1), Some(4)),
        "{done}"
    );
    assert_eq!(
        paths(&done),
        [
            "manifest.agent.agent.json",
            "manifest.agent.json",
            "manifest.json"
        ]
    );
    assert_eq!(download(&a, &id, "manifest.agent.json").await, b"mine\n");
    assert_eq!(
        download(&a, &id, "manifest.agent.agent.json").await,
        b"also\n"
    );
    let m = manifest(&a, &id).await;
    let outs = m["outputs"].as_array().unwrap();
    let from: Vec<(&str, &str)> = outs
        .iter()
        .map(|o| {
            (
                o["sandbox_path"].as_str().unwrap(),
                o["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        from,
        [
            ("manifest.agent.json", "manifest.agent.agent.json"),
            ("manifest.json", "manifest.agent.json")
        ]
    );
    assert_eq!(m["exit"]["exit_code"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_failure_never_runs_the_command_again() {
    let server = Server::start();
    let (tenant, a) = server.admin().tenant("unlucky", None).await;
    let id = submit(
        &a,
        json!({"shell": gated("echo ran; printf data > /output/result.txt")}),
    )
    .await;
    let sb = job_sandbox(&a, &id).await;
    // A fault of Warden's own: the export's scratch directory cannot be
    // made (a file is in its way).
    let work = server.data_dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join(format!("{id}-out")), b"in the way").unwrap();
    release(&a, &sb).await;
    let done = wait_done(&a, &id, Duration::from_secs(60)).await;
    // The command ran once; its exit is recorded; the job failed with the
    // export's error (it used to run three times and lose the exit code).
    assert_eq!(
        (
            done["status"].as_str(),
            done["attempts"].as_u64(),
            done["exit_code"].as_i64()
        ),
        (Some("failed"), Some(1), Some(0)),
        "{done}"
    );
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("exporting /output"),
        "{done}"
    );
    let logs = a.get(&format!("/v1/reviews/{id}/logs")).await.text;
    assert_eq!(logs.matches("ran\n").count(), 1, "{logs}");
    assert!(!logs.contains("attempt 2"), "{logs}");
    // Only the manifest was stored, and nothing else is on disk.
    assert_eq!(paths(&done), ["manifest.json"]);
    let m = manifest(&a, &id).await;
    assert!(
        m["export_error"]
            .as_str()
            .unwrap()
            .contains("exporting /output"),
        "{m}"
    );
    let outputs = server
        .data_dir
        .join(format!("objects/tenants/{tenant}/outputs"));
    assert_eq!(disk_use(&outputs).1, 1, "objects left behind");
}

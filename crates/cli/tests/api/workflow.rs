//! The workflow Warden exists for, through the HTTP API: the 12-file sample
//! set and the line-review agent uploaded, a review job on the python-data
//! image (built by `make image`), its outputs downloaded: the planted
//! inconsistencies are found and the manifest's hashes match.

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn images_dir() -> String {
    std::env::var("WARDEN_IMAGES_DIR").unwrap_or_else(|_| "/var/cache/warden/images".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_review_finds_the_planted_inconsistencies() {
    assert!(
        Path::new(&images_dir())
            .join("python-data/.warden-image.json")
            .is_file(),
        "the python-data image is missing: run `make image` (make test does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let key = tmp.path().join("expected.json");
    let gen = std::process::Command::new("/usr/bin/python3")
        .arg(repo().join("examples/sample/generate.py"))
        .arg(&set)
        .arg("--expected")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let expected: Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();

    let server = Server::start();
    let (_, a) = server.admin().tenant("analyst", None).await;
    let mut ids = Vec::new();
    let mut digests = std::collections::BTreeMap::new();
    let mut paths: Vec<_> = std::fs::read_dir(&set)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 12);
    for agent in ["agent.py", "readers.py", "report.py"] {
        paths.push(repo().join("examples/line-review").join(agent));
    }
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        let f = a.upload(name, &bytes).await;
        digests.insert(name.to_string(), hex::encode(Sha256::digest(&bytes)));
        ids.push(f["id"].clone());
    }
    let id = submit(
        &a,
        json!({"files": ids, "image": "python-data", "command": ["python3", "/input/agent.py"],
               "limits": {"memory_mb": 1024, "cpus": 1, "pids": 128, "disk_mb": 64}, "timeout_secs": 300}),
    )
    .await;
    let done = wait_done(&a, &id, Duration::from_secs(240)).await;
    let logs = a.get(&format!("/v1/reviews/{id}/logs")).await.text;
    assert_eq!(done["status"], "succeeded", "{done}\n{logs}");
    let outs: Vec<&str> = done["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    for want in [
        "findings.json",
        "manifest.json",
        "report.html",
        "summary.md",
    ] {
        assert!(outs.contains(&want), "{want} missing from {outs:?}");
    }
    let get = |path: String| {
        let a = a.clone();
        let id = id.clone();
        async move {
            let r = a
                .req(Method::GET, &format!("/v1/reviews/{id}/outputs/{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap().to_vec()
        }
    };
    let findings: Value = serde_json::from_slice(&get("findings.json".into()).await).unwrap();
    let found: Vec<&str> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for planted in expected["findings"].as_array().unwrap() {
        let pid = planted["id"].as_str().unwrap();
        assert!(
            found.contains(&pid),
            "planted {pid} not found; found {found:?}"
        );
    }
    // The manifest: every input and output by hash, and they match.
    let manifest: Value = serde_json::from_slice(&get("manifest.json".into()).await).unwrap();
    assert_eq!(manifest["image"]["name"], "python-data");
    assert!(
        manifest["image"]["content_sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64),
        "{}",
        manifest["image"]
    );
    let inputs = manifest["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 15);
    for i in inputs {
        assert_eq!(
            Some(&i["sha256"].as_str().unwrap().to_string()),
            digests.get(i["name"].as_str().unwrap()),
            "{i}"
        );
    }
    for o in manifest["outputs"].as_array().unwrap() {
        let bytes = get(o["path"].as_str().unwrap().to_string()).await;
        assert_eq!(o["sha256"], hex::encode(Sha256::digest(&bytes)), "{o}");
    }
    let html = String::from_utf8(get("report.html".into()).await).unwrap();
    assert!(
        html.contains("data:image/png;base64,"),
        "the report has no charts"
    );
}

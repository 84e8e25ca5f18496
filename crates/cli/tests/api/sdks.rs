//! Warden's own SDKs running their own suites against a real server: the
//! Python SDK (sdk/python, installed as a user would by `make sdk-python`)
//! with pytest, the TypeScript SDK (sdk/typescript, built by `make
//! sdk-typescript`) with node's test runner, each with its README's
//! examples (the TypeScript ones type-checked too) and, for TypeScript,
//! the line-review twin. Two tenants (one with a command policy), secrets
//! enabled, webhooks to loopback allowed for the signature tests.

use crate::e2b_sdk::{installed, repo, run_to_success};
use crate::harness::*;
use crate::policy::put_policy;
use serde_json::json;
use std::process::Command;

/// A server and tenants as both suites expect them; runs `cmd` with their
/// address and keys and fails with its output unless it exits 0.
async fn run_suite(mut cmd: Command, what: &str, passed: &str) {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_SECRETS_KEY", crate::secrets::KEY),
            ("WARDEN_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ],
    );
    let admin = server.admin();
    let (tid, main) = admin.tenant("sdk-main", None).await;
    let (_, other) = admin.tenant("sdk-other", None).await;
    let p = put_policy(
        &admin,
        &tid,
        json!({ "deny": ["*touch /scratch/forbidden*"] }),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);
    cmd.env("WARDEN_URL", &server.url)
        .env("WARDEN_API_KEY", &main.token)
        .env("WARDEN_OTHER_TENANT_KEY", &other.token);
    let (out, report) = run_to_success(&server, cmd, what).await;
    assert!(
        out.contains(passed),
        "no test summary from {what}:\n{report}"
    );
    println!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_passes_its_own_suite_against_a_real_server() {
    let venv = repo().join("target/sdk-python-venv");
    installed(&venv.join(".installed"), "the Python SDK (make sdk-python)");
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo().join("sdk/python/tests"))
        .current_dir(std::env::temp_dir())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_suite(cmd, "the Python SDK's tests", " passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_passes_its_own_suite_against_a_real_server() {
    let sdk = repo().join("sdk/typescript");
    installed(
        &sdk.join("node_modules/.built"),
        "the TypeScript SDK (make sdk-typescript)",
    );
    let mut tests: Vec<_> = std::fs::read_dir(sdk.join("test"))
        .expect("sdk/typescript/test")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    tests.sort();
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-concurrency=1"])
        .args(&tests)
        .current_dir(&sdk);
    run_suite(cmd, "the TypeScript SDK's tests", "# fail 0").await;
}

//! Warden's Python SDK (sdk/python), installed as a user would (`make
//! sdk-python`), running its own pytest suite and its README's examples
//! against a real server: two tenants (one with a command policy), secrets
//! enabled, webhooks to loopback allowed for the signature test.

use crate::e2b_sdk::{installed, repo, wait_capped};
use crate::harness::*;
use crate::policy::put_policy;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_passes_its_own_suite_against_a_real_server() {
    let venv = repo().join("target/sdk-python-venv");
    installed(&venv.join(".installed"), "the Python SDK (make sdk-python)");
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_SECRETS_KEY", crate::secrets::KEY),
            ("WARDEN_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ],
    );
    let admin = server.admin();
    let (tid, main) = admin.tenant("sdk-python", None).await;
    let (_, other) = admin.tenant("sdk-python-other", None).await;
    let p = put_policy(
        &admin,
        &tid,
        json!({ "deny": ["*touch /scratch/forbidden*"] }),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text);

    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo().join("sdk/python/tests"))
        .current_dir(std::env::temp_dir())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("WARDEN_URL", &server.url)
        .env("WARDEN_API_KEY", &main.token)
        .env("WARDEN_OTHER_TENANT_KEY", &other.token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, out, err) = tokio::task::spawn_blocking(move || wait_capped(cmd))
        .await
        .expect("pytest runner");
    let report = format!(
        "--- stdout\n{out}\n--- stderr\n{err}\n--- server log\n{}",
        server.log.lock().map(|l| l.clone()).unwrap_or_default()
    );
    assert_eq!(status, Some(0), "the SDK's tests failed:\n{report}");
    assert!(out.contains(" passed"), "no pytest summary:\n{report}");
    let t0 = Instant::now();
    while !cgroups_left(&server).is_empty() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cgroups_left(&server).is_empty(),
        "sandboxes left behind: {:?}\n{report}",
        cgroups_left(&server)
    );
    println!("{out}");
}

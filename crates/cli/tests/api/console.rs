//! The web console in headless Chromium (tests/console/console.py, Selenium
//! on Debian's chromium and chromedriver, installed by `make console-test`):
//! a tenant signs in, uploads, submits a review, watches it finish and opens
//! its report, whose `<script>` must neither run nor reach the console's
//! storage or the API; the operator's view lists tenants and tiers and
//! disables one.

use crate::e2b_sdk::{installed, repo, run_checked};
use crate::harness::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_browser_and_reports_cannot_reach_it() {
    let venv = repo().join("target/console-venv");
    installed(&venv.join(".installed"), "Selenium (make console-test)");
    assert!(
        std::path::Path::new("/usr/bin/chromedriver").exists(),
        "chromium-driver is not installed: run `make console-test`"
    );
    let server = Server::start();
    let (_, main) = server.admin().tenant("console-tenant", None).await;
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(repo().join("tests/console/console.py"))
        .env("PYTHONUNBUFFERED", "1")
        .env("WARDEN_URL", &server.url)
        .env("WARDEN_API_KEY", &main.token)
        .env("WARDEN_ADMIN_TOKEN", ADMIN)
        .env("WARDEN_TENANT_NAME", "console-tenant");
    run_checked(&server, cmd).await;
}

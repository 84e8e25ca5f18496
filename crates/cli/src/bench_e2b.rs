//! `warden bench e2b`: Sandbox.create() -> commands.run("true") -> kill()
//! through the official E2B Python SDK (tests/e2b/bench.py, on the pinned
//! SDK `make e2b-sdk` installs) against an in-process `warden serve` on
//! loopback. The script times the SDK next to the same cycle through the
//! native /v1 API and prints the figures; this only starts the server,
//! makes the tenant and hands the script its address and key.

use anyhow::{bail, Context, Result};
use std::path::Path;

use crate::bench_server::BenchServer;

pub async fn run(python: &Path, script: &Path, rounds: usize, warmup: usize) -> Result<()> {
    if !python.exists() {
        bail!(
            "{} not found: install the E2B Python SDK with `make e2b-sdk`",
            python.display()
        );
    }
    if !script.exists() {
        bail!(
            "{} not found (run from the repository root or pass --script)",
            script.display()
        );
    }
    let server = BenchServer::start(|_| {}).await?;
    let status = tokio::process::Command::new(python)
        .arg(script)
        .args([
            "--rounds",
            &rounds.to_string(),
            "--warmup",
            &warmup.to_string(),
        ])
        .env("E2B_API_URL", &server.http.base)
        .env("E2B_SANDBOX_URL", &server.http.base)
        .env("E2B_API_KEY", &server.http.token)
        // Nothing from the caller's environment may point the SDK elsewhere.
        .env_remove("E2B_DOMAIN")
        .env_remove("E2B_DEBUG")
        .status()
        .await
        .with_context(|| format!("running {}", python.display()));
    server.stop().await?;
    let status = status?;
    if !status.success() {
        bail!("{} failed: {status}", script.display());
    }
    Ok(())
}

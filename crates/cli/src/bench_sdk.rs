//! `warden bench sdk`: sandbox create -> exec -> delete through Warden's own
//! SDKs next to the same three requests as plain HTTP in the same process
//! (sdk/python/bench.py with httpx, sdk/typescript/bench.mjs with fetch),
//! against an in-process `warden serve` on loopback. The scripts time and
//! print; this starts the server, makes the tenant and hands them its
//! address and key.

use anyhow::{bail, Context, Result};
use std::path::Path;

use crate::bench_server::BenchServer;

pub async fn run(python: &Path, sdk_dir: &Path, rounds: usize, warmup: usize) -> Result<()> {
    let py_script = sdk_dir.join("python/bench.py");
    let ts_dir = sdk_dir.join("typescript");
    if !python.exists() {
        bail!(
            "{} not found: install the Python SDK with `make sdk-python`",
            python.display()
        );
    }
    if !ts_dir.join("dist/index.js").exists() {
        bail!(
            "{} is not built: run `make sdk-typescript`",
            ts_dir.display()
        );
    }
    let server = BenchServer::start(|_| {}).await?;
    let counts = [
        "--rounds".to_string(),
        rounds.to_string(),
        "--warmup".to_string(),
        warmup.to_string(),
    ];
    let mut failed = None;
    for (what, mut cmd) in [
        ("python", tokio::process::Command::new(python)),
        ("node", tokio::process::Command::new("node")),
    ] {
        if what == "python" {
            cmd.arg(&py_script);
        } else {
            cmd.arg("bench.mjs").current_dir(&ts_dir);
        }
        let status = cmd
            .args(&counts)
            .env("WARDEN_URL", &server.http.base)
            .env("WARDEN_API_KEY", &server.http.token)
            .status()
            .await
            .with_context(|| format!("running the {what} benchmark"));
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => failed = Some(format!("the {what} benchmark failed: {s}")),
            Err(e) => failed = Some(format!("{e:#}")),
        }
    }
    server.stop().await?;
    if let Some(f) = failed {
        bail!(f);
    }
    Ok(())
}

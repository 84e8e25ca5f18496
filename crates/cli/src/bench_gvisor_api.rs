//! `warden bench gvisor`, over the API: gVisor sandbox create -> first
//! output of an exec, through an in-process `warden serve` on loopback,
//! with the pool of pre-started gVisor sandboxes off and warm (each
//! timed create after the pool has had time to refill). Prints figures;
//! asserts nothing.

use crate::bench_measure::{ms, percentile, row};
use crate::bench_server::{BenchServer, Http};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long the pool gets to boot a replacement between timed creates.
const REFILL: Duration = Duration::from_millis(800);

/// One create -> first output, and the create's share of it.
struct Timed {
    total: Duration,
    create: Duration,
    /// The same exec again, after the timed part: what a warm sandbox takes.
    again: Duration,
}

/// Create -> exec `echo first` (its output back); the sandbox is deleted
/// afterwards, untimed.
async fn first_output(http: &Http) -> Result<Timed> {
    let t = Instant::now();
    let sb = http
        .call(
            reqwest::Method::POST,
            "/v1/sandboxes",
            Some(json!({"isolation": "gvisor"})),
        )
        .await?;
    let id = sb["id"].as_str().context("no sandbox id")?.to_string();
    let create = t.elapsed();
    let out = http
        .call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"command": ["echo", "first"]})),
        )
        .await?;
    let took = t.elapsed();

    if out["stdout"] != "first\n" {
        bail!("echo failed: {out}");
    }
    let t2 = Instant::now();
    http.call(
        reqwest::Method::POST,
        &format!("/v1/sandboxes/{id}/exec"),
        Some(json!({"command": ["echo", "first"]})),
    )
    .await?;
    let again = t2.elapsed();
    http.call(
        reqwest::Method::DELETE,
        &format!("/v1/sandboxes/{id}"),
        None,
    )
    .await?;
    Ok(Timed {
        total: took,
        create,
        again,
    })
}

async fn series(prestart: usize, n: usize, warmup: usize) -> Result<Vec<Timed>> {
    let server = BenchServer::start(|cfg| cfg.runtime.gvisor_prestart = prestart).await?;
    let mut v = Vec::with_capacity(n);
    for i in 0..n + warmup {
        let d = first_output(&server.http).await?;
        if i >= warmup {
            v.push(d);
        }
        if prestart > 0 {
            tokio::time::sleep(REFILL).await;
        }
    }
    server.stop().await?;
    Ok(v)
}

pub async fn run(n: usize, warmup: usize) -> Result<()> {
    let cold = series(0, n, warmup).await?;
    let warm = series(2, n, warmup).await?;
    println!("gVisor over the HTTP API: create -> first output of an exec, {n} creates each");
    let totals = |v: &[Timed]| v.iter().map(|t| t.total).collect::<Vec<_>>();
    let creates = |v: &[Timed]| v.iter().map(|t| t.create).collect::<Vec<_>>();
    row("pool off (boot on create)", &totals(&cold));
    row("  of which create", &creates(&cold));
    row("pool warm (2 pre-started)", &totals(&warm));
    row("  of which create", &creates(&warm));
    row(
        "  (the exec again, after)",
        &warm.iter().map(|t| t.again).collect::<Vec<_>>(),
    );
    let (cold, warm) = (totals(&cold), totals(&warm));
    println!(
        "pool warm p50: {:.1} ms (target <= 30 ms); {:.1}x faster than a boot on create",
        ms(percentile(&warm, 0.5)),
        ms(percentile(&cold, 0.5)) / ms(percentile(&warm, 0.5))
    );
    Ok(())
}

//! `warden bench api`: create -> exec `/bin/true` -> destroy over HTTP on
//! loopback against an in-process `warden serve`, sequentially (p50/p99)
//! and with concurrent clients (throughput), next to the same cycle
//! through the runtime directly in the same process (the baseline the API
//! adds its cost to). Prints figures; asserts nothing.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::{Duration, Instant};

use crate::bench_measure::{bar, ms, percentile};
use crate::bench_server::{BenchServer, Http};

/// One create -> exec /bin/true -> destroy cycle.
async fn cycle(http: &Http) -> Result<Duration> {
    let t = Instant::now();
    let sb = http
        .call(reqwest::Method::POST, "/v1/sandboxes", Some(json!({})))
        .await?;
    let id = sb["id"].as_str().context("no sandbox id")?.to_string();
    let out = http
        .call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"command": ["/bin/true"]})),
        )
        .await?;
    if out["exit_code"] != 0 {
        bail!("/bin/true failed: {out}");
    }
    http.call(
        reqwest::Method::DELETE,
        &format!("/v1/sandboxes/{id}"),
        None,
    )
    .await?;
    Ok(t.elapsed())
}
pub async fn run(rounds: usize, concurrency: usize, warmup: usize) -> Result<()> {
    if rounds == 0 || concurrency == 0 {
        bail!("--rounds and --concurrency must be at least 1");
    }
    let server = BenchServer::start(|_| {}).await?;
    let http = server.http.clone();
    for _ in 0..warmup {
        cycle(&http).await?;
    }
    // The same cycle through the runtime, as `warden bench run` times it.
    let (base_line, _) = crate::bench_measure::time_warden(rounds.min(300), 0).await?;
    let pb = bar("api", rounds);
    let mut seq = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        seq.push(cycle(&http).await?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let pb = bar(&format!("api x{concurrency}"), rounds);
    let t0 = Instant::now();
    let per = rounds.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let http = http.clone();
        let pb = pb.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::with_capacity(per);
            for _ in 0..per {
                v.push(cycle(&http).await?);
                pb.inc(1);
            }
            Ok::<_, anyhow::Error>(v)
        }));
    }
    let mut conc = Vec::new();
    for t in tasks {
        conc.extend(t.await??);
    }
    let wall = t0.elapsed();
    pb.finish_and_clear();
    server.stop().await?;

    println!("create -> exec /bin/true -> destroy ({rounds} rounds, {warmup} warm-up)");
    let row = |name: &str, v: &[Duration]| {
        println!(
            "{name:<36} p50 {:>7.2} ms   p99 {:>7.2} ms",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99))
        )
    };
    row("runtime, in process (baseline)", &base_line);
    row("HTTP API, 1 client", &seq);
    row(&format!("HTTP API, {concurrency} clients"), &conc);
    println!(
        "{:<36} {:.0} cycles/s",
        format!("throughput, {concurrency} clients"),
        conc.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "API / baseline (p50)                 {:.2}x   (targets: p50 <= 10 ms, p99 <= 25 ms)",
        percentile(&seq, 0.5).as_secs_f64() / percentile(&base_line, 0.5).as_secs_f64()
    );
    Ok(())
}

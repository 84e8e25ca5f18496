//! `warden bench jobs`: what review jobs cost on top of the sandbox.
//!
//! - hydration: a sandbox with the 12-file set (12 MB) at `/input` versus
//!   one without files, created over the API in the same process;
//! - job overhead: submit -> the command's first instruction, and the
//!   command's exit -> outputs listed, over trivial jobs (the command prints
//!   the clock at its start and end; sandbox and host share the clock);
//! - throughput: jobs per minute with a trivial command at the node's
//!   concurrency limit.
//!
//! Prints figures; asserts nothing.

use crate::bench_measure::{bar, ms, percentile};
use crate::bench_server::BenchServer;
use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Twelve files of the sample set's sizes (12 MB; hydration is by hard
/// link, so their content does not matter).
fn sample_sizes() -> Vec<(String, usize)> {
    let mut v = Vec::new();
    for (i, kb) in [180, 260, 120].iter().enumerate() {
        v.push((format!("report_{i}.pdf"), kb * 1024));
    }
    for (i, kb) in [10_000, 300, 150, 90, 60].iter().enumerate() {
        v.push((format!("table_{i}.csv"), kb * 1024));
    }
    for (i, kb) in [900, 120, 60, 30].iter().enumerate() {
        v.push((format!("book_{i}.xlsx"), kb * 1024));
    }
    v
}

async fn wait(http: &crate::bench_server::Http, id: &str) -> Result<Value> {
    loop {
        let r = http
            .call(Method::GET, &format!("/v1/reviews/{id}"), None)
            .await?;
        match r["status"].as_str() {
            Some("pending") | Some("running") => tokio::time::sleep(Duration::from_millis(5)).await,
            Some("succeeded") => return Ok(r),
            _ => bail!("job {id} ended {}", r),
        }
    }
}

pub async fn run(jobs: usize, rounds: usize) -> Result<()> {
    if jobs == 0 || rounds == 0 {
        bail!("--jobs and --rounds must be at least 1");
    }
    let server = BenchServer::start(|_| {}).await?;
    let http = server.http.clone();

    // Hydration.
    let mut ids = Vec::new();
    for (name, size) in sample_sizes() {
        // CSV text: the server accepts files by what their bytes are.
        let row = b"2026-09-30,EAST,SKU-1042,12,199.90\n";
        let bytes: Vec<u8> = row.iter().copied().cycle().take(size).collect();
        ids.push(http.upload(&name, bytes).await?);
    }
    let mut plain = Vec::new();
    let mut hydrated = Vec::new();
    let pb = bar("hydrate", rounds * 2);
    for _ in 0..rounds {
        for (files, out) in [(json!([]), &mut plain), (json!(ids), &mut hydrated)] {
            let t = Instant::now();
            let sb = http
                .call(Method::POST, "/v1/sandboxes", Some(json!({"files": files})))
                .await?;
            out.push(t.elapsed());
            let id = sb["id"].as_str().context("no sandbox id")?;
            http.call(Method::DELETE, &format!("/v1/sandboxes/{id}"), None)
                .await?;
            pb.inc(1);
        }
    }
    pb.finish_and_clear();

    // Overhead of a job around its command.
    let mut to_start = Vec::new();
    let mut to_listed = Vec::new();
    let pb = bar("jobs", jobs);
    for _ in 0..jobs {
        let submitted = unix_ns();
        let r = http
            .call(
                Method::POST,
                "/v1/reviews",
                Some(json!({"files": [], "shell": "date +%s%N; echo x > /output/x; date +%s%N"})),
            )
            .await?;
        let id = r["id"].as_str().context("no job id")?.to_string();
        wait(&http, &id).await?;
        let listed = unix_ns();
        let log = http
            .client
            .get(format!("{}/v1/reviews/{id}/logs?stream=stdout", http.base))
            .bearer_auth(&http.token)
            .send()
            .await?
            .text()
            .await?;
        let stamps: Vec<i128> = log.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let [start, end] = stamps[..] else {
            bail!("unexpected job output {log:?}");
        };
        to_start.push(Duration::from_nanos((start - submitted).max(0) as u64));
        to_listed.push(Duration::from_nanos((listed - end).max(0) as u64));
        pb.inc(1);
    }
    pb.finish_and_clear();

    // Throughput at the node's concurrency limit.
    let t0 = Instant::now();
    let mut pending = Vec::new();
    for _ in 0..jobs {
        let r = http
            .call(
                Method::POST,
                "/v1/reviews",
                Some(json!({"files": [], "command": ["true"]})),
            )
            .await?;
        pending.push(r["id"].as_str().context("no job id")?.to_string());
    }
    for id in &pending {
        wait(&http, id).await?;
    }
    let wall = t0.elapsed();
    server.stop().await?;

    let row = |name: &str, v: &[Duration]| {
        println!(
            "{name:<44} p50 {:>8.2} ms   p99 {:>8.2} ms",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99))
        )
    };
    println!("review jobs ({rounds} sandbox pairs, {jobs} trivial jobs)");
    row("create a sandbox, no files", &plain);
    row("create a sandbox, 12 files (12 MB) at /input", &hydrated);
    println!(
        "{:<44} {:>8.2} ms   (target <= 50 ms)",
        "hydration (difference of the p50s)",
        ms(percentile(&hydrated, 0.5).saturating_sub(percentile(&plain, 0.5)))
    );
    row("job overhead: submit -> command starts", &to_start);
    row("job overhead: command exits -> outputs listed", &to_listed);
    println!(
        "{:<44} {:.0} jobs/min ({jobs} jobs in {:.1} s, default concurrency)",
        "throughput, trivial jobs",
        jobs as f64 * 60.0 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    Ok(())
}

//! `warden bench state`: state that outlives a sandbox, over the HTTP API
//! of an in-process `warden serve` on loopback, on each tier: a plain
//! create next to a create from a small snapshot and from a snapshot
//! holding a large file; pause and resume of a sandbox that wrote that
//! file (files only, and on gVisor processes and memory too); and an
//! image build next to its cached rebuilds. Prints figures
//! and ratios measured in the one run; asserts nothing.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::bench_measure::{bar, ms, percentile};
use crate::bench_server::{BenchServer, Http};

/// How long gVisor's pool gets to boot a replacement between timed
/// creates (as in `bench_gvisor_api`).
const REFILL: Duration = Duration::from_millis(800);

async fn create(http: &Http, body: Value) -> Result<String> {
    let sb = http
        .call(reqwest::Method::POST, "/v1/sandboxes", Some(body))
        .await?;
    Ok(sb["id"].as_str().context("no sandbox id")?.to_string())
}

async fn destroy(http: &Http, id: &str) -> Result<()> {
    http.call(
        reqwest::Method::DELETE,
        &format!("/v1/sandboxes/{id}"),
        None,
    )
    .await
    .map(|_| ())
}

async fn sh(http: &Http, id: &str, line: &str) -> Result<String> {
    let out = http
        .call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"command": ["sh", "-c", line]})),
        )
        .await?;
    if out["exit_code"] != 0 {
        bail!("{line}: {out}");
    }
    Ok(out["stdout"].as_str().unwrap_or_default().to_string())
}

/// `rounds` timings of `f`.
async fn timed<F, Fut>(label: &str, rounds: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Duration>>,
{
    let pb = bar(label, rounds);
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        v.push(f().await?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(v)
}

fn p50(v: &[Duration]) -> f64 {
    ms(percentile(v, 0.5))
}

async fn tier(
    http: &Http,
    isolation: &str,
    (rounds, size_mb): (usize, u64),
    disk: &Disk,
) -> Result<()> {
    let shape = json!({"isolation": isolation});
    // gVisor creates are timed with its pool of pre-started sandboxes warm
    // (as `warden bench gvisor` times them): back to back, they would
    // time the pool's refill instead.
    let refill = match isolation {
        "gvisor" => REFILL,
        _ => Duration::ZERO,
    };
    let plain = timed("create", rounds, || async {
        tokio::time::sleep(refill).await;
        let t = Instant::now();
        let id = create(http, shape.clone()).await?;
        let d = t.elapsed();
        destroy(http, &id).await?;
        Ok(d)
    })
    .await?;
    // A small snapshot: a few files in the home directory.
    let small_src = create(http, shape.clone()).await?;
    sh(
        http,
        &small_src,
        "mkdir -p /scratch/proj && for i in 1 2 3 4 5 6 7 8; do echo $i > /scratch/proj/f$i; done",
    )
    .await?;
    let small = http
        .call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{small_src}/snapshots"),
            Some(json!({})),
        )
        .await?;
    let small_id = small["id"].as_str().context("no snapshot id")?.to_string();
    destroy(http, &small_src).await?;
    let from_small = timed("small", rounds, || async {
        tokio::time::sleep(refill).await;
        let t = Instant::now();
        let id = create(http, json!({"snapshot": small_id})).await?;
        let d = t.elapsed();
        destroy(http, &id).await?;
        Ok(d)
    })
    .await?;
    // A sandbox that wrote `size_mb` of random bytes.
    let big = create(http, shape.clone()).await?;
    sh(
        http,
        &big,
        &format!("head -c {size_mb}M /dev/urandom > /scratch/blob"),
    )
    .await?;
    let snap = http
        .call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{big}/snapshots"),
            Some(json!({})),
        )
        .await?;
    let snap_id = snap["id"].as_str().context("no snapshot id")?.to_string();
    let from_big = timed("large", rounds, || async {
        tokio::time::sleep(refill).await;
        let t = Instant::now();
        let id = create(http, json!({"snapshot": snap_id})).await?;
        let d = t.elapsed();
        destroy(http, &id).await?;
        Ok(d)
    })
    .await?;
    let (pauses, resumes) = cycles(http, &big, "filesystem", rounds).await?;
    let (firsts, floor) = first_pauses(http, &shape, (rounds, size_mb), disk).await?;
    // Processes and memory too (gVisor only): of that sandbox, and of an
    // idle one.
    let full = match isolation {
        "gvisor" => {
            let idle = create(http, shape.clone()).await?;
            let small = cycles(http, &idle, "full", rounds).await?;
            destroy(http, &idle).await?;
            Some((cycles(http, &big, "full", rounds).await?, small))
        }
        _ => None,
    };
    let size = sh(http, &big, "wc -c < /scratch/blob").await?;
    if size.trim() != (size_mb << 20).to_string() {
        bail!("the file is {size} bytes after the cycles");
    }
    destroy(http, &big).await?;
    for s in [&small_id, &snap_id] {
        http.call(reqwest::Method::DELETE, &format!("/v1/snapshots/{s}"), None)
            .await?;
    }
    let base = p50(&plain);
    println!("{isolation}: plain create p50 {base:.1} ms");
    println!(
        "{isolation}: create from a snapshot of 8 small files p50 {:.1} ms ({:.2}x plain)",
        p50(&from_small),
        p50(&from_small) / base
    );
    println!(
        "{isolation}: create from a snapshot of a {size_mb} MiB file p50 {:.1} ms ({:.2}x plain)",
        p50(&from_big),
        p50(&from_big) / base
    );
    // The first pause stores every file (here: new bytes each round, so
    // the disk takes them all); a resumed sandbox's next pauses take what
    // it did not touch from the pause it came from.
    println!(
        "{isolation}: first pause of a sandbox that wrote {size_mb} MiB (new bytes each round) \
         p50 {:.1} ms (p90 {:.1}); writing as many bytes to a new file in the data directory, \
         right after each, p50 {:.1} ms ({:.2}x), {rounds} rounds",
        p50(&firsts),
        ms(percentile(&firsts, 0.9)),
        p50(&floor),
        p50(&firsts) / p50(&floor),
    );
    let later = pauses.get(1..).filter(|l| !l.is_empty()).unwrap_or(&pauses);
    println!(
        "{isolation}: pause of it once resumed p50 {:.1} ms (p90 {:.1}; after each resume it \
         writes one small file), resume p50 {:.1} ms (p90 {:.1}), {rounds} cycles",
        p50(later),
        ms(percentile(later, 0.9)),
        p50(&resumes),
        ms(percentile(&resumes, 0.9)),
    );
    if let Some(((pauses, resumes), (idle_pauses, idle_resumes))) = full {
        println!(
            "{isolation}: full pause of an idle sandbox p50 {:.1} ms (p90 {:.1}), resume p50 \
             {:.1} ms (p90 {:.1}), {rounds} cycles",
            p50(&idle_pauses),
            ms(percentile(&idle_pauses, 0.9)),
            p50(&idle_resumes),
            ms(percentile(&idle_resumes, 0.9)),
        );
        println!(
            "{isolation}: full pause (processes and memory) of a sandbox that wrote {size_mb} MiB \
             p50 {:.1} ms (p90 {:.1}), resume p50 {:.1} ms (p90 {:.1}), {rounds} cycles",
            p50(&pauses),
            ms(percentile(&pauses, 0.9)),
            p50(&resumes),
            ms(percentile(&resumes, 0.9)),
        );
    }
    Ok(())
}

/// `rounds` pauses in `mode` and resumes of sandbox `id` (which writes a
/// small file after each resume, untimed): their times.
async fn cycles(
    http: &Http,
    id: &str,
    mode: &str,
    rounds: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut pauses, mut resumes) = (Vec::new(), Vec::new());
    let pb = bar(&format!("pause ({mode})"), rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        http.call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/pause"),
            Some(json!({ "mode": mode })),
        )
        .await?;
        pauses.push(t.elapsed());
        let t = Instant::now();
        http.call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/resume"),
            Some(json!({})),
        )
        .await?;
        resumes.push(t.elapsed());
        sh(http, id, "date > /scratch/resumed").await?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((pauses, resumes))
}

/// Builds `name` and reads the answer to its end; the `done` event.
async fn build(http: &Http, body: &Value) -> Result<Value> {
    let resp = http
        .client
        .post(format!("{}/v1/images", http.base))
        .bearer_auth(&http.token)
        .json(body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("build: {status}: {text}");
    }
    for line in text.lines() {
        let e: Value = serde_json::from_str(line)?;
        match e["event"].as_str() {
            Some("done") => return Ok(e),
            Some("error") => bail!("build: {}", e["message"]),
            _ => {}
        }
    }
    bail!("the build's answer ended without its result")
}

async fn images(http: &Http, rounds: usize) -> Result<()> {
    let body = json!({
        "name": "bench",
        "base": "python-data",
        "steps": [
            {"run": "mkdir -p /opt/bench && python3 -c 'print(1)' > /opt/bench/one"},
            {"run": "echo two > /opt/bench/two"},
        ],
    });
    let t = Instant::now();
    build(http, &body).await?;
    let first = t.elapsed();
    let again = timed("rebuild", rounds, || async {
        let t = Instant::now();
        let done = build(http, &body).await?;
        if done["steps_run"] != 0 {
            bail!("a cached rebuild ran steps: {done}");
        }
        Ok(t.elapsed())
    })
    .await?;
    let mut last = body.clone();
    last["steps"][1] = json!({"run": "echo changed > /opt/bench/two"});
    let t = Instant::now();
    let done = build(http, &last).await?;
    let changed = t.elapsed();
    println!(
        "image build of 2 steps on python-data: first {:.0} ms; unchanged rebuild p50 {:.1} ms \
         ({:.4}x the first); last step changed {:.0} ms ({} step run)",
        ms(first),
        p50(&again),
        p50(&again) / ms(first),
        ms(changed),
        done["steps_run"]
    );
    Ok(())
}

pub async fn run(rounds: usize, size_mb: u64) -> Result<()> {
    if rounds == 0 || size_mb == 0 {
        bail!("--rounds and --size-mb must be at least 1");
    }
    let server = BenchServer::start(|cfg| {
        cfg.limits.max_snapshot_bytes = cfg.limits.max_snapshot_bytes.max(size_mb << 21);
    })
    .await?;
    let http = server.http.clone();
    let disk = Disk::new(server.data_dir(), size_mb);
    for isolation in ["native", "gvisor"] {
        // The gVisor tier opens on first use: a start says whether it can.
        match create(&http, json!({"isolation": isolation})).await {
            Ok(id) => destroy(&http, &id).await?,
            Err(e) => {
                println!("{isolation}: not available here ({e:#}): skipped");
                continue;
            }
        }
        tier(&http, isolation, (rounds, size_mb), &disk).await?;
    }
    images(&http, rounds).await?;
    server.stop().await
}

/// `rounds` first pauses of a new sandbox of `shape` that wrote `size_mb`
/// MiB of new random bytes, each followed by a write of as many bytes to
/// a new file on the data directory's disk (the floor of such a pause,
/// which stores them all): both times.
async fn first_pauses(
    http: &Http,
    shape: &Value,
    (rounds, size_mb): (usize, u64),
    disk: &Disk,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut pauses, mut floor) = (Vec::new(), Vec::new());
    let pb = bar("first pause", rounds);
    for _ in 0..rounds {
        let id = create(http, shape.clone()).await?;
        sh(
            http,
            &id,
            &format!("head -c {size_mb}M /dev/urandom > /scratch/blob"),
        )
        .await?;
        let t = Instant::now();
        http.call(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/pause"),
            Some(json!({})),
        )
        .await?;
        pauses.push(t.elapsed());
        destroy(http, &id).await?;
        floor.push(disk.write_new()?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((pauses, floor))
}

/// Writes of new files to the data directory, as a blob is written (in 5
/// MiB pieces, not synced).
struct Disk {
    dir: std::path::PathBuf,
    bytes: Vec<u8>,
}

impl Disk {
    fn new(dir: &std::path::Path, size_mb: u64) -> Disk {
        // Not compressible, not all one page.
        let bytes = (0..(size_mb << 20))
            .map(|i: u64| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        Disk {
            dir: dir.to_path_buf(),
            bytes,
        }
    }

    /// How long writing the bytes to a new file took (it is removed).
    fn write_new(&self) -> Result<Duration> {
        use std::io::Write;
        let path = self.dir.join("bench-disk");
        let t = Instant::now();
        let mut f = std::fs::File::create(&path)?;
        for piece in self.bytes.chunks(5 << 20) {
            f.write_all(piece)?;
        }
        drop(f);
        let took = t.elapsed();
        std::fs::remove_file(&path)?;
        Ok(took)
    }
}

//! `warden bench egress`: what the egress proxy costs. A loopback server
//! serves a large body and a tiny one; the same client (curl) fetches them
//! directly from the host and, from inside an allowlisted sandbox, through
//! the proxy. Prints throughput and per-connection time both ways and the
//! ratios; never asserts anything.

use crate::bench_measure::{ms, percentile};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_egress::{Egress, Overrides, Policy};
use warden_protocol::{Client, ExecRequest};
use warden_runtime::Runtime;
use warden_spec::{EgressRule, NetworkMode, SandboxSpec};

/// A server that answers `/big` with `size` bytes and anything else with
/// two; one request per connection.
async fn serve(size: u64) -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let big = head.starts_with(b"GET /big");
                let len = if big { size } else { 2 };
                let hdr = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                );
                if s.write_all(hdr.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 1 << 20];
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(port)
}

/// A curl that prints one `%{speed_download} %{time_total}` line per URL.
fn curl_loop(url: &str, n: usize) -> String {
    format!(
        "for i in $(seq {n}); do curl -sS -o /dev/null -w '%{{speed_download}} %{{time_total}}\\n' '{url}' || exit 1; done"
    )
}

/// (bytes per second, seconds) per line.
fn parse(out: &[u8]) -> Result<Vec<(f64, f64)>> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace().map(str::parse::<f64>);
            match (w.next(), w.next()) {
                (Some(Ok(a)), Some(Ok(b))) => Ok((a, b)),
                _ => bail!("unexpected curl output {l:?}"),
            }
        })
        .collect()
}

fn direct(line: &str) -> Result<Vec<(f64, f64)>> {
    let out = Command::new("sh").args(["-c", line]).output()?;
    if !out.status.success() {
        bail!(
            "curl on the host failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&out.stdout)
}

async fn proxied(client: &Client, line: &str) -> Result<Vec<(f64, f64)>> {
    let out = client.exec_collect(ExecRequest::shell(line)).await?;
    if out.status.code != Some(0) {
        bail!(
            "curl in the sandbox failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&out.stdout)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn run(size_mb: u64, downloads: usize, requests: usize) -> Result<()> {
    let port = serve(size_mb << 20).await?;
    let rules = vec![EgressRule::parse("bench.test")?];
    let spec = SandboxSpec {
        network: NetworkMode::Allowlist {
            rules: rules.clone(),
        },
        ..SandboxSpec::default()
    };
    let rt = crate::runtime::native()?;
    let mut sb = rt.start(&spec)?;
    let listener = sb.take_egress_listener().context("no egress listener")?;
    let overrides = Overrides::parse([format!("bench.test=127.0.0.1:{port}").as_str()])?;
    let policy = Policy {
        rules,
        overrides: Arc::new(overrides),
    };
    let egress = Egress::start(listener, policy, Arc::new(|_| {}))?;
    let control = sb.take_control().context("no control channel")?;
    control.set_nonblocking(true)?;
    let client = Client::connect(tokio::net::UnixStream::from_std(control)?).await?;

    let pb = crate::bench_measure::bar("egress", 2 * downloads + 2);
    let (mut d_big, mut p_big) = (Vec::new(), Vec::new());
    for _ in 0..downloads {
        d_big.extend(direct(&curl_loop(
            &format!("http://127.0.0.1:{port}/big"),
            1,
        ))?);
        pb.inc(1);
        p_big.extend(proxied(&client, &curl_loop("http://bench.test/big", 1)).await?);
        pb.inc(1);
    }
    let d_small = direct(&curl_loop(&format!("http://127.0.0.1:{port}/s"), requests))?;
    pb.inc(1);
    let p_small = proxied(&client, &curl_loop("http://bench.test/s", requests)).await?;
    pb.inc(1);
    pb.finish_and_clear();
    drop(client);
    drop(egress);
    sb.destroy()?;

    let mbps = |v: &[(f64, f64)]| median(v.iter().map(|x| x.0 / 1e6).collect());
    let (d_tp, p_tp) = (mbps(&d_big), mbps(&p_big));
    let secs = |v: &[(f64, f64)]| -> Vec<Duration> {
        v.iter().map(|x| Duration::from_secs_f64(x.1)).collect()
    };
    let (ds, ps) = (secs(&d_small), secs(&p_small));
    println!(
        "egress proxy: curl fetching from a loopback server, directly from the host \
         and from a sandbox through its proxy ({size_mb} MiB x {downloads}, then \
         {requests} small requests each on a new connection)"
    );
    println!(
        "{:<34}{:>12}{:>16}{:>10}",
        "", "direct", "through proxy", "ratio"
    );
    println!(
        "{:<34}{:>12.0}{:>16.0}{:>10.2}   (target >= 0.50)",
        format!("throughput, median MB/s"),
        d_tp,
        p_tp,
        p_tp / d_tp
    );
    for (name, p) in [
        ("small request p50, ms", 0.5),
        ("small request p99, ms", 0.99),
    ] {
        let (a, b) = (ms(percentile(&ds, p)), ms(percentile(&ps, p)));
        println!("{name:<34}{a:>12.3}{b:>16.3}{:>+10.3} ms added", b - a);
    }
    let added = ms(percentile(&ps, 0.5)) - ms(percentile(&ds, 0.5));
    println!("added per connection (p50): {added:.3} ms   (target <= 1 ms)");
    Ok(())
}

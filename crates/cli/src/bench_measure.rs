//! What the benchmarks share: running and timing commands and sandbox
//! cycles, percentiles, the rows they print, progress bars, and the
//! `bwrap` baseline.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden_protocol::{Client, ExecRequest};
use warden_runtime::Runtime;
use warden_spec::SandboxSpec;

/// Where a cycle's time went, phase by phase.
pub struct Phases {
    pub start: Vec<Duration>,
    pub ready: Vec<Duration>,
    pub exec: Vec<Duration>,
    pub destroy: Vec<Duration>,
    /// A second /bin/true in the same sandbox (not part of the cycle).
    pub exec_again: Vec<Duration>,
}

pub fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let i = ((s.len() - 1) as f64 * p).round() as usize;
    s[i]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn bar(name: &str, n: usize) -> ProgressBar {
    let pb = ProgressBar::new(n as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(name.to_string());
    pb
}

/// One run of an external command, timed; fails if it fails.
pub fn run_command(name: &str, argv: &[&str]) -> Result<Duration> {
    let t = Instant::now();
    let st = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", argv[0]))?;
    let d = t.elapsed();
    if !st.status.success() {
        bail!(
            "{name} baseline failed: {}",
            String::from_utf8_lossy(&st.stderr).trim()
        );
    }
    Ok(d)
}

/// Times `n` runs of an external command (after `warmup` untimed ones).
pub fn time_command(name: &str, argv: &[&str], n: usize, warmup: usize) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    let pb = bar(name, n + warmup);
    for i in 0..n + warmup {
        let d = run_command(name, argv)?;
        if i >= warmup {
            out.push(d);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

pub async fn time_warden(n: usize, warmup: usize) -> Result<(Vec<Duration>, Phases)> {
    let rt = crate::runtime::native()?;
    time_cycles(&rt, &SandboxSpec::default(), "warden", n, warmup).await
}

impl Phases {
    pub fn new() -> Phases {
        Phases {
            start: vec![],
            ready: vec![],
            exec: vec![],
            destroy: vec![],
            exec_again: vec![],
        }
    }
}

/// One create -> /bin/true -> destroy cycle of `spec` on `rt`: its total
/// (without the second exec), recorded with its phases into `ph`.
pub async fn cycle(
    rt: &dyn Runtime,
    spec: &SandboxSpec,
    ph: Option<&mut Phases>,
) -> Result<Duration> {
    let t0 = Instant::now();
    let mut sb = rt.start(spec)?;
    let t1 = Instant::now();
    let control = sb.take_control().context("no control channel")?;
    control.set_nonblocking(true)?;
    let client = Client::connect(tokio::net::UnixStream::from_std(control)?).await?;
    let t2 = Instant::now();
    let out = client
        .exec_collect(ExecRequest::argv(["/bin/true"]))
        .await?;
    if out.status.code != Some(0) {
        bail!("/bin/true failed in the sandbox: {:?}", out.status);
    }
    let t3 = Instant::now();
    client
        .exec_collect(ExecRequest::argv(["/bin/true"]))
        .await?;
    let again = t3.elapsed();
    drop(client);
    sb.destroy()?;
    let t4 = Instant::now();
    if let Some(ph) = ph {
        ph.start.push(t1 - t0);
        ph.ready.push(t2 - t1);
        ph.exec.push(t3 - t2);
        ph.destroy.push(t4 - t3 - again);
        ph.exec_again.push(again);
    }
    Ok(t4 - t0 - again)
}

/// Create -> /bin/true -> destroy cycles of `spec` on `rt`, with phases.
pub async fn time_cycles(
    rt: &dyn Runtime,
    spec: &SandboxSpec,
    name: &str,
    n: usize,
    warmup: usize,
) -> Result<(Vec<Duration>, Phases)> {
    let mut total = Vec::with_capacity(n);
    let mut ph = Phases::new();
    let pb = bar(name, n + warmup);
    for i in 0..n + warmup {
        let counted = i >= warmup;
        let d = cycle(rt, spec, counted.then_some(&mut ph)).await?;
        if counted {
            total.push(d);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((total, ph))
}

pub fn row(name: &str, v: &[Duration]) {
    println!(
        "{name:<34} p50 {:>7.2} ms   p99 {:>7.2} ms",
        ms(percentile(v, 0.5)),
        ms(percentile(v, 0.99))
    );
}

pub const BWRAP: &[&str] = &[
    "bwrap",
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--tmpfs",
    "/scratch",
    "--tmpfs",
    "/output",
    "--dir",
    "/input",
    "/bin/true",
];

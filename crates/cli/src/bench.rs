//! `warden bench run`: sandbox create -> `/bin/true` -> destroy, timed in
//! this process, next to the baselines it must beat, run in the same process:
//! `unshare` of the same namespaces (the floor) and `bwrap` with the same
//! binds, taking turns cycle by cycle. Warden runs twice: as configured by
//! default (sandboxes pre-started in the background) and with nothing
//! pre-started (every step on the start path). Prints p50/p99 and the
//! ratios; never asserts anything.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden_protocol::{Client, ExecRequest};
use warden_runtime::Runtime;
use warden_spec::SandboxSpec;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Sandbox create -> /bin/true -> destroy, next to unshare and bwrap.
    Run {
        /// Cycles per contender.
        #[arg(long, default_value_t = 300)]
        iterations: usize,
        /// Warm-up cycles per contender, not counted.
        #[arg(long, default_value_t = 20)]
        warmup: usize,
    },
    /// Whole processes from a shell: `warden run -- /bin/true` next to
    /// bwrap, and `warden run --isolation gvisor` next to `runsc do`.
    Cli {
        /// Runs per contender of the native pair.
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// Runs per contender of the gVisor pair (0 skips it).
        #[arg(long, default_value_t = 30)]
        gvisor_iterations: usize,
        /// Warm-up runs per contender, not counted.
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Runs per contender of the image pair: `python3 -c pass` in the
        /// python-data image next to the host image (0 skips it).
        #[arg(long, default_value_t = 30)]
        image_iterations: usize,
        /// The directory image of that pair [default: python-data in
        /// $WARDEN_IMAGES_DIR, else in /var/cache/warden/images].
        #[arg(long)]
        image: Option<std::path::PathBuf>,
    },
    /// Create -> exec /bin/true -> destroy over the HTTP API (in-process
    /// server on loopback), sequential and concurrent.
    Api {
        /// Cycles, sequentially and again spread over the clients.
        #[arg(long, default_value_t = 1000)]
        rounds: usize,
        /// Concurrent clients for the throughput run.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
    },
    /// The egress proxy: a large download and many small requests from a
    /// loopback server, directly and through a sandbox's proxy.
    Egress {
        /// Size of the large download, MiB.
        #[arg(long, default_value_t = 100)]
        size_mb: u64,
        /// Large downloads per side.
        #[arg(long, default_value_t = 5)]
        downloads: usize,
        /// Small requests per side, each on a new connection.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
    /// The gVisor tier: create -> /bin/true -> destroy next to raw
    /// `runsc do /bin/true`, and exec round trips against native.
    Gvisor {
        /// Cycles per contender.
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        /// Warm-up cycles per contender, not counted.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
    },
    /// Sandbox.create() -> commands.run("true") -> kill() through the
    /// official E2B Python SDK (in-process server on loopback), next to the
    /// same cycle through the native API.
    E2b {
        /// The Python of the virtualenv holding the pinned SDK.
        #[arg(long, default_value = "target/e2b-venv/bin/python")]
        python: std::path::PathBuf,
        /// The benchmark script.
        #[arg(long, default_value = "tests/e2b/bench.py")]
        script: std::path::PathBuf,
        /// Cycles per contender.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        /// Warm-up cycles per contender, not counted.
        #[arg(long, default_value_t = 10)]
        warmup: usize,
    },
    /// Review jobs: /input hydration, job overhead, jobs per minute.
    Jobs {
        /// Trivial jobs timed one by one, then submitted at once.
        #[arg(long, default_value_t = 100)]
        jobs: usize,
        /// Sandbox pairs (with and without the 12 files) for hydration.
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
}

pub fn main(cmd: BenchCommand) -> i32 {
    let result = match cmd {
        BenchCommand::Run { iterations, warmup } => run(iterations, warmup),
        BenchCommand::Cli {
            iterations,
            gvisor_iterations,
            warmup,
            image_iterations,
            image,
        } => crate::bench_cli::run(crate::bench_cli::Plan {
            n: iterations,
            gvisor_n: gvisor_iterations,
            warmup,
            image_n: image_iterations,
            image,
        }),
        BenchCommand::Api {
            rounds,
            concurrency,
            warmup,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(crate::bench_api::run(rounds, concurrency, warmup))),
        BenchCommand::Egress {
            size_mb,
            downloads,
            requests,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(crate::bench_egress::run(size_mb, downloads, requests))),
        BenchCommand::Gvisor { iterations, warmup } => crate::bench_gvisor::run(iterations, warmup),
        BenchCommand::E2b {
            python,
            script,
            rounds,
            warmup,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(crate::bench_e2b::run(&python, &script, rounds, warmup))),
        BenchCommand::Jobs { jobs, rounds } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(crate::bench_jobs::run(jobs, rounds))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("warden: bench: {e:#}");
            125
        }
    }
}

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
    fn new() -> Phases {
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
async fn cycle(rt: &dyn Runtime, spec: &SandboxSpec, ph: Option<&mut Phases>) -> Result<Duration> {
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

const UNSHARE: &[&str] = &[
    "unshare",
    "-U",
    "-r",
    "-p",
    "-f",
    "-m",
    "-i",
    "-u",
    "-n",
    "--cgroup",
    "/bin/true",
];

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

fn run(n: usize, warmup: usize) -> Result<()> {
    if n == 0 {
        bail!("--iterations must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The runtime as `warden serve` and the benches run it (sandboxes
    // pre-started in the background), and one that takes every step on
    // the start path, for comparison.
    let native = crate::runtime::native()?;
    let cold = crate::runtime::native_with_pool(0)?;
    let spec = SandboxSpec::default();
    // The contenders take turns cycle by cycle, so a busy neighbour (or any
    // drift of the machine) weighs on all of them alike and the ratios hold.
    let (mut warden, mut warden_cold, mut unshare, mut bwrap) = (vec![], vec![], vec![], vec![]);
    let (mut phases, mut cold_phases) = (Phases::new(), Phases::new());
    let pb = bar("cycles", n + warmup);
    for i in 0..n + warmup {
        let counted = i >= warmup;
        let w = rt.block_on(cycle(&native, &spec, counted.then_some(&mut phases)))?;
        let c = rt.block_on(cycle(&cold, &spec, counted.then_some(&mut cold_phases)))?;
        let u = run_command("unshare", UNSHARE)?;
        let b = run_command("bwrap", BWRAP)?;
        if counted {
            warden.push(w);
            warden_cold.push(c);
            unshare.push(u);
            bwrap.push(b);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!(
        "sandbox create -> /bin/true -> destroy, {n} cycles each (after {warmup} warm-up), \
         contenders taking turns"
    );
    row("warden (native, full confinement)", &warden);
    row("  start (take a pre-started init)", &phases.start);
    row("  ready (init set-up, handshake)", &phases.ready);
    row("  exec /bin/true", &phases.exec);
    row("  destroy", &phases.destroy);
    row("exec /bin/true in a live sandbox", &phases.exec_again);
    row("warden, nothing pre-started", &warden_cold);
    row("  start (clone, maps, cgroup)", &cold_phases.start);
    row("  ready (init set-up, handshake)", &cold_phases.ready);
    row("unshare -U -r -p -f -m -i -u -n", &unshare);
    row("bwrap --unshare-all (same binds)", &bwrap);
    let w = ms(percentile(&warden, 0.5));
    let c = ms(percentile(&warden_cold, 0.5));
    let u = ms(percentile(&unshare, 0.5));
    let b = ms(percentile(&bwrap, 0.5));
    println!("ratio warden/unshare p50: {:.2}x (target <= 1.5x)", w / u);
    println!("ratio bwrap/warden p50:   {:.2}x (target >= 1.5x)", b / w);
    println!(
        "nothing pre-started: warden/unshare {:.2}x, bwrap/warden {:.2}x",
        c / u,
        b / c
    );
    Ok(())
}

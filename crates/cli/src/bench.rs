//! `warden bench`: which benchmark, and its options. Each lives in its own
//! `bench_*.rs` (`bench_run.rs` the in-process cycle, `bench_cli.rs` whole
//! processes, ...), on the timing helpers of `bench_measure.rs`. Every one
//! prints figures next to a baseline run in the same process; none asserts
//! anything.

use clap::Subcommand;

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
    /// State that outlives a sandbox (in-process server on loopback, each
    /// tier): create from a snapshot next to a plain create, pause and
    /// resume of a sandbox that wrote a large file, and an image build
    /// next to its cached rebuilds.
    State {
        /// Timed cycles of each.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// The large file, MiB.
        #[arg(long, default_value_t = 100)]
        size_mb: u64,
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
    /// Sandbox create -> exec -> delete through Warden's Python and
    /// TypeScript SDKs next to the same requests as plain HTTP.
    Sdk {
        /// The Python of the virtualenv holding the SDK (make sdk-python).
        #[arg(long, default_value = "target/sdk-python-venv/bin/python")]
        python: std::path::PathBuf,
        /// The SDKs' directory (its typescript/ built by make sdk-typescript).
        #[arg(long, default_value = "sdk")]
        sdk_dir: std::path::PathBuf,
        /// Cycles per contender.
        #[arg(long, default_value_t = 100)]
        rounds: usize,
        /// Warm-up cycles per contender, not counted.
        #[arg(long, default_value_t = 5)]
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
        BenchCommand::Run { iterations, warmup } => crate::bench_run::run(iterations, warmup),
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
        BenchCommand::State { rounds, size_mb } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(crate::bench_state::run(rounds, size_mb))),
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
        BenchCommand::Sdk {
            python,
            sdk_dir,
            rounds,
            warmup,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(crate::bench_sdk::run(&python, &sdk_dir, rounds, warmup))),
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

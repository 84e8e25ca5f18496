//! `warden run`: one command in a fresh sandbox.
//!
//! Exit status: the command's own; 128+N when a signal N killed it; 124 on
//! timeout; 126/127 when the command cannot be executed / found; 125 for
//! Warden's own errors. Every non-command failure prints one line on stderr.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use warden_protocol::{Client, ErrorKind, ExecRequest, ExitStatus, Request, Response, CHUNK};
use warden_runtime::Sandbox;
use warden_spec::{parse_duration, parse_size, Image, Isolation, SandboxSpec, SandboxUser};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum IsolationArg {
    Native,
    Gvisor,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum UserArg {
    Sandbox,
    Root,
    User,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// `host` (the host's /usr, read-only) or a root-filesystem directory.
    #[arg(long, default_value = "host")]
    image: String,
    /// Isolation tier.
    #[arg(long, value_enum, default_value = "native")]
    isolation: IsolationArg,
    /// Memory limit, e.g. 256M (swap is off).
    #[arg(long)]
    memory: Option<String>,
    /// CPU share, e.g. 0.5.
    #[arg(long)]
    cpus: Option<f64>,
    /// Most processes at once.
    #[arg(long)]
    pids: Option<u64>,
    /// Wall-clock limit, e.g. 30s, 5m.
    #[arg(long)]
    timeout: Option<String>,
    /// Size of /output, /scratch and /tmp each, and of any single file.
    #[arg(long)]
    disk: Option<String>,
    /// Host directory shown read-only at /input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Host directory that receives /output when the command ends.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    env: Vec<String>,
    /// Working directory inside the sandbox (default: the user's home;
    /// /scratch for `sandbox` and `root`).
    #[arg(long)]
    workdir: Option<String>,
    /// Run as the unprivileged `sandbox` user (default), as `user` (E2B's
    /// layout: uid 1001 with a writable home, /home/user) or as root of the
    /// sandbox's user namespace (still without capabilities).
    #[arg(long, value_enum, default_value = "sandbox")]
    user: UserArg,
    /// Let the command write anywhere its permissions allow: the root's
    /// changes go to a layer of the sandbox's own (within --disk on the
    /// native tier, in memory on gVisor), gone when it ends.
    #[arg(long)]
    writable_root: bool,
    /// Allow connections to HOST through the sandbox's egress proxy
    /// (repeatable; `*.example.com` and `HOST:PORT[,PORT]` work; ports 443
    /// and 80 by default). Without it the sandbox has no network at all.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// Connect an allowed HOST (on any port, or only PORT) to IP:PORT
    /// instead of resolving it, like curl's --resolve. An operator's
    /// override: the address is used as given, private or not.
    #[arg(long, value_name = "HOST[:PORT]=IP:PORT")]
    resolve: Vec<String>,
    /// Write every egress attempt, allowed or denied, to FILE as JSON lines
    /// (denials are always summarised on stderr).
    #[arg(long, value_name = "FILE")]
    egress_log: Option<PathBuf>,
    /// Forward this process's stdin to the command.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Outcome codes of `warden run` itself.
const TIMEOUT: i32 = 124;
const WARDEN_ERROR: i32 = 125;

pub fn build_spec(a: &RunArgs) -> Result<SandboxSpec> {
    let mut spec = SandboxSpec {
        image: if a.image == "host" {
            Image::Host
        } else {
            let dir = std::fs::canonicalize(&a.image)
                .with_context(|| format!("image directory {}", a.image))?;
            Image::Dir(dir.to_string_lossy().into_owned())
        },
        isolation: match a.isolation {
            IsolationArg::Native => Isolation::Native,
            IsolationArg::Gvisor => Isolation::Gvisor,
        },
        user: match a.user {
            UserArg::Sandbox => SandboxUser::Sandbox,
            UserArg::Root => SandboxUser::Root,
            UserArg::User => SandboxUser::User,
        },
        writable_root: a.writable_root,
        ..SandboxSpec::default()
    };
    spec.workdir = match (&a.workdir, spec.user) {
        (Some(w), _) => w.clone(),
        (None, SandboxUser::User) => warden_spec::USER_HOME.into(),
        (None, _) => SandboxSpec::default().workdir,
    };
    if let Some(m) = &a.memory {
        spec.limits.memory_bytes = Some(parse_size(m)?);
    }
    if let Some(c) = a.cpus {
        if !(c > 0.0 && c.is_finite()) {
            bail!("--cpus must be a positive number");
        }
        spec.limits.cpu_millicores = Some((c * 1000.0).round() as u64);
    }
    if let Some(p) = a.pids {
        spec.limits.pids = Some(p);
    }
    if let Some(t) = &a.timeout {
        spec.limits.timeout = Some(parse_duration(t)?);
    }
    if let Some(d) = &a.disk {
        spec.limits.disk_bytes = parse_size(d)?;
    }
    if let Some(i) = &a.input {
        let dir = std::fs::canonicalize(i).with_context(|| format!("--input {}", i.display()))?;
        if !dir.is_dir() {
            bail!("--input {} is not a directory", i.display());
        }
        spec.input_dir = Some(dir.to_string_lossy().into_owned());
    }
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--env {kv:?} is not K=V"))?;
        spec.env.push((k.into(), v.into()));
    }
    spec.network = crate::run_egress::network(&a.allow_host, &a.resolve)?;
    spec.validate()?;
    Ok(spec)
}

pub fn main(args: RunArgs) -> i32 {
    // One thread: a single sandbox's streams need no more, and every
    // worker thread is a start-up cost of each `warden run`.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow!(e)),
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> i32 {
    eprintln!("warden: {e:#}");
    WARDEN_ERROR
}

async fn run(args: RunArgs) -> Result<i32> {
    let spec = build_spec(&args)?;
    let runtime = crate::runtime::for_spec(&spec)?;
    let mut sandbox = runtime.start(&spec).context("cannot start the sandbox")?;
    runtime.seal();
    let egress = crate::run_egress::start(
        &spec,
        sandbox.as_mut(),
        &args.resolve,
        args.egress_log.as_deref(),
    );
    let result = match egress {
        Ok(egress) => {
            let r = drive(&args, &spec, sandbox.as_mut()).await;
            drop(egress);
            r
        }
        Err(e) => Err(e),
    };
    // Under gVisor the host's OOM killer ends the whole sandbox (the Sentry
    // holds the application's memory), so the control channel just closes:
    // say why, and exit as a SIGKILLed command would.
    let result = match result {
        Err(e) if sandbox.stats().is_ok_and(|s| s.oom_kills > 0) => {
            eprintln!("warden: the sandbox ran out of memory and was killed ({e:#})");
            Ok(128 + libc::SIGKILL)
        }
        r => r,
    };
    // Right here rather than on a blocking-pool thread: nothing else of this
    // run is left to serve, and a thread is one more start-up per run.
    let destroyed = sandbox.destroy();
    let code = result?;
    destroyed.context("sandbox teardown")?;
    Ok(code)
}

async fn drive(args: &RunArgs, spec: &SandboxSpec, sandbox: &mut dyn Sandbox) -> Result<i32> {
    let control = sandbox
        .take_control()
        .context("sandbox has no control channel")?;
    control.set_nonblocking(true)?;
    let client = Client::connect(tokio::net::UnixStream::from_std(control)?)
        .await
        .context("sandbox did not come up")?;
    let mut exec = ExecRequest::argv(args.command.clone());
    exec.stdin = args.interactive;
    let mut stream = client.stream(Request::Exec(exec))?;
    let deadline = spec.limits.timeout.map(|t| tokio::time::Instant::now() + t);
    // Ctrl-C or a TERM stops the command the same way a timeout does: the
    // sandbox stays up long enough to export what /output holds.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut pid = None;
    let ended = loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, stream.next()).await.ok(),
                None => Some(stream.next().await),
            }
        };
        let next = tokio::select! {
            r = next => r,
            _ = sigint.recv() => break Ended::Signal(libc::SIGINT),
            _ = sigterm.recv() => break Ended::Signal(libc::SIGTERM),
        };
        match next {
            None => break Ended::Timeout,
            Some(Ok(Some(Response::Started { pid: p }))) => {
                pid = Some(p);
                if args.interactive {
                    tokio::spawn(forward_stdin(client.clone(), p));
                }
            }
            Some(Ok(Some(Response::Stdout(d)))) => write_out(&mut std::io::stdout(), &d)?,
            Some(Ok(Some(Response::Stderr(d)))) => write_out(&mut std::io::stderr(), &d)?,
            Some(Ok(Some(Response::Exited(st)))) => break Ended::Exited(st),
            Some(Ok(other)) => bail!("unexpected reply from the sandbox: {other:?}"),
            Some(Err(e)) => {
                return Ok(match e.remote_kind() {
                    Some(ErrorKind::NotFound) => {
                        eprintln!("warden: {}: command not found ({e})", args.command[0]);
                        127
                    }
                    Some(ErrorKind::PermissionDenied) => {
                        eprintln!("warden: {}: cannot execute ({e})", args.command[0]);
                        126
                    }
                    _ => return Err(e).context("running the command"),
                })
            }
        }
    };
    if !matches!(ended, Ended::Exited(_)) {
        if let Some(p) = pid {
            let _ = client.signal(p, libc::SIGKILL).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), client.wait(p)).await;
        }
    }
    let code = match ended {
        Ended::Exited(st) => exit_code(st),
        Ended::Timeout => {
            let t = spec.limits.timeout.unwrap_or_default();
            eprintln!("warden: timed out after {}", humanize(t));
            TIMEOUT
        }
        Ended::Signal(sig) => {
            eprintln!("warden: interrupted by signal {sig}; the command was stopped");
            128 + sig
        }
    };
    if let Some(out) = &args.output {
        let report =
            warden_runtime::export::export(&client, "/output", out, spec.limits.disk_bytes)
                .await
                .context("exporting /output")?;
        for s in &report.skipped {
            eprintln!("warden: not exported: {}: {}", s.path, s.reason);
        }
    }
    Ok(code)
}

/// How the command's run ended.
enum Ended {
    Exited(ExitStatus),
    /// The sandbox's wall-clock limit passed.
    Timeout,
    /// `warden run` itself was asked to stop.
    Signal(i32),
}

fn exit_code(st: ExitStatus) -> i32 {
    if st.timed_out {
        return TIMEOUT;
    }
    st.shell_code()
}

fn write_out(w: &mut dyn Write, d: &[u8]) -> Result<()> {
    match w.write_all(d).and_then(|_| w.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe on our side (e.g. `| head`) is not the sandbox's fault.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn forward_stdin(client: Client, pid: u32) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client.stdin(pid, &buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = client.close_stdin(pid).await;
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

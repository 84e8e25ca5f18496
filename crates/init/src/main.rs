//! `warden-init`: PID 1 inside every sandbox, whatever the isolation tier.
//!
//! ```text
//! warden-init --control-fd N --setup-fd M    # native tier: set the sandbox up first
//! warden-init --control-fd N --config-on-control  # already isolated (gVisor): the
//!                                                # config arrives on the channel first
//! warden-init --control-fd N --config JSON   # already isolated, for tests
//! warden-init --zygote N --filter-fd M       # native tier: clone sandboxes' inits on request
//! ```
//! On a setup failure the init writes `WERR<reason>` to the control channel
//! instead of the protocol preamble, so the host can say what went wrong.

mod batch;
mod changes;
mod command;
mod conn;
mod files;
mod meta;
mod passed;
mod path_ops;
mod process;
mod pty;
mod server;
mod session;
mod spawn;
mod stable_alloc;
mod tunnel;
mod warm_up;
mod watch;
mod watch_tree;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use warden_protocol::{codec, InitConfig};

/// See `stable_alloc.rs`: tokio's I/O registrations must outlive a gVisor
/// restore's stale epoll events.
#[global_allocator]
static ALLOC: stable_alloc::StableAlloc = stable_alloc::StableAlloc::new();

pub struct State {
    pub conn: conn::Conn,
    pub procs: process::Procs,
    pub files: files::Files,
    pub sessions: session::Sessions,
    pub watches: watch::Watches,
    pub tunnels: tunnel::Tunnels,
    pub cfg: InitConfig,
}

struct Args {
    control_fd: RawFd,
    setup_fd: Option<RawFd>,
    config: Option<String>,
    config_on_control: bool,
    zygote_fd: Option<RawFd>,
    filter_fd: Option<RawFd>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut control_fd, mut setup_fd, mut config) = (None, None, None);
    let (mut zygote_fd, mut filter_fd) = (None, None);
    let mut config_on_control = false;
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--control-fd" => control_fd = Some(value()?.parse().map_err(|_| "bad fd")?),
            "--setup-fd" => setup_fd = Some(value()?.parse().map_err(|_| "bad fd")?),
            "--config" => config = Some(value()?),
            "--config-on-control" => config_on_control = true,
            "--zygote" => zygote_fd = Some(value()?.parse().map_err(|_| "bad fd")?),
            "--filter-fd" => filter_fd = Some(value()?.parse().map_err(|_| "bad fd")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if zygote_fd.is_some() {
        return Ok(Args {
            control_fd: -1,
            setup_fd: None,
            config: None,
            config_on_control: false,
            zygote_fd,
            filter_fd: Some(filter_fd.ok_or("--zygote needs --filter-fd")?),
        });
    }
    Ok(Args {
        control_fd: control_fd.ok_or("--control-fd is required")?,
        setup_fd,
        config,
        config_on_control,
        zygote_fd,
        filter_fd,
    })
}

/// Nothing the init inherited or opens may leak into the commands it
/// starts: every descriptor above stdio becomes close-on-exec.
fn cloexec_above_stdio() {
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// How long an idle thread of the blocking pool (file work) stays: long,
/// so the one a pooled gVisor sandbox's warm-up started is still there
/// when the sandbox is handed out (starting one is ~25 system calls, each
/// a trap under gVisor). At most `max_blocking_threads` of them.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The init's runtime: one thread for the event loop, a few for file work.
/// Timers stay tokio's: a timerfd armed before a gVisor checkpoint was not
/// always heard from after the restore (a resume then hung), while the
/// timer wheel's epoll_wait timeout always comes back. The cost is a clock
/// read per wake-up (a trap under gVisor without a vDSO clock).
fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
}

/// `started` (a warm-up's runtime), else a new runtime; the init fails
/// its start if it cannot have one.
fn runtime(
    started: Option<tokio::runtime::Runtime>,
    control: &mut std::fs::File,
) -> tokio::runtime::Runtime {
    match started.map_or_else(build_runtime, Ok) {
        Ok(rt) => rt,
        Err(e) => fail(control, &format!("cannot start runtime: {e}")),
    }
}

fn fail(control: &mut std::fs::File, why: &str) -> ! {
    let _ = control.write_all(&codec::SETUP_FAILED);
    let _ = control.write_all(why.as_bytes());
    std::process::exit(125)
}

fn main() {
    cloexec_above_stdio();
    // One name in `ps`, whichever build (e.g. warden-init-static) runs.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"warden-init".as_ptr(), 0, 0, 0) };
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("warden-init: {e}");
            std::process::exit(125)
        }
    };
    let args = match (args.zygote_fd, args.filter_fd) {
        (Some(fd), Some(filter_fd)) => {
            // Returns only in a new sandbox's init, with its channels on the
            // native backend's fixed fds.
            warden_inside::zygote::serve(fd, filter_fd);
            cloexec_above_stdio();
            Args {
                control_fd: warden_inside::wire::CONTROL_FD,
                setup_fd: Some(warden_inside::wire::SETUP_FD),
                config: None,
                config_on_control: false,
                zygote_fd: None,
                filter_fd: None,
            }
        }
        _ => args,
    };
    // SAFETY: the fd was handed to us by our launcher and is ours alone.
    let control = unsafe { OwnedFd::from_raw_fd(args.control_fd) };
    let mut control = std::fs::File::from(control);
    // A pooled gVisor sandbox's, started by its warm-up.
    let mut early_rt: Option<tokio::runtime::Runtime> = None;
    let cfg = match (args.setup_fd, args.config) {
        (Some(fd), _) => match warden_inside::init::setup(fd, args.control_fd) {
            Ok(cfg) => cfg,
            Err(e) => fail(&mut control, &e.to_string()),
        },
        (None, Some(json)) => match serde_json::from_str::<InitConfig>(&json) {
            Ok(cfg) => cfg,
            Err(e) => fail(&mut control, &format!("bad --config: {e}")),
        },
        (None, None) if args.config_on_control => loop {
            match codec::read_init_config(&mut control) {
                Ok(codec::BeforeConfig::Config(cfg)) => break cfg,
                Ok(codec::BeforeConfig::WarmUp) => {
                    // Already isolated (gVisor: the Sentry confines every
                    // thread), so the runtime may start before the config.
                    let rt = runtime(early_rt.take(), &mut control);
                    warm_up::run(&rt);
                    early_rt = Some(rt);
                    if control.write_all(&codec::WARMED).is_err() {
                        std::process::exit(125);
                    }
                }
                Err(e) => fail(&mut control, &format!("reading the configuration: {e}")),
            }
        },
        (None, None) => fail(
            &mut control,
            "none of --setup-fd, --config, --config-on-control given",
        ),
    };
    let rt = runtime(early_rt, &mut control);
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let std_sock = std::os::unix::net::UnixStream::from(OwnedFd::from(control));
        let _ = std_sock.set_nonblocking(true);
        match tokio::net::UnixStream::from_std(std_sock) {
            Ok(s) => server::serve(s, cfg).await,
            Err(_) => std::process::exit(125),
        }
    })
}

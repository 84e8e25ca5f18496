//! `process.Process`: commands started, listed, attached to, fed and
//! signalled through the same init requests as the native exec API (so the
//! command policy, secret masking and audit apply unchanged).
//!
//! Every E2B process is a background process of the init: its output is
//! kept for attaching, and it outlives the stream that started it (a
//! client that goes away, or a call deadline, ends the stream only).

use super::audit::ACTOR;
use super::errors::{from_api, from_client};
use super::process_config::{config_of, exec_request, shell_line};
use super::rpc::{Call, Sink};
use super::state::{EnvdState, ProcMeta};
use crate::manager::Live;
use crate::secrets::MaskStream;
use crate::service::audit::{Action, Audit};
use crate::state::Shared;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;
use warden_envd_wire::connect::{Error, Shape};
use warden_envd_wire::process::{
    process_event as ev, process_input, process_selector, ConnectRequest, ConnectResponse,
    ListResponse, ProcessEvent, ProcessInfo, SendInputRequest, SendInputResponse,
    SendSignalRequest, SendSignalResponse, Signal, StartRequest, StartResponse, UpdateRequest,
    UpdateResponse,
};
use warden_protocol::{ExecRequest, ExitStatus, PtySize, Request, Response as R, ResponseStream};

/// How often an idle stream carries a keep-alive (proxies drop silent
/// connections; the SDKs ignore these events).
const KEEPALIVE: Duration = Duration::from_secs(30);

/// A terminal's size when a PTY start names none (a classic terminal's).
const DEFAULT_PTY: PtySize = PtySize { cols: 80, rows: 24 };

/// E2B's terminal size as the init's; 0 (unset) takes the default.
fn pty_size(pty: &warden_envd_wire::process::Pty) -> Result<PtySize, Error> {
    let Some(size) = &pty.size else {
        return Ok(DEFAULT_PTY);
    };
    let dim = |v: u32, default: u16, what: &str| match v {
        0 => Ok(default),
        1..=4096 => Ok(v as u16),
        _ => Err(Error::invalid_argument(format!(
            "pty.size.{what} must be at most 4096"
        ))),
    };
    Ok(PtySize {
        cols: dim(size.cols, DEFAULT_PTY.cols, "cols")?,
        rows: dim(size.rows, DEFAULT_PTY.rows, "rows")?,
    })
}

pub async fn start(st: &Shared, live: Arc<Live>, envd: &EnvdState, call: &Call) -> Response {
    let started = async {
        let req: StartRequest = call.message(Shape::Stream)?;
        let pty = req.pty.as_ref().map(pty_size).transpose()?;
        let config = req
            .process
            .ok_or_else(|| Error::invalid_argument("process (cmd, args) is required"))?;
        if config.cmd.is_empty() {
            return Err(Error::invalid_argument("process.cmd is empty"));
        }
        let mut exec = exec_request(&config, req.stdin.unwrap_or(false))?;
        exec.pty = pty;
        // The policy judges what the user asked to run: E2B's
        // `commands.run(line)` arrives as `/bin/bash -l -c line`, which the
        // native API would have sent as the shell line itself.
        let judged = ExecRequest {
            command: shell_line(&exec.command).unwrap_or_else(|| exec.command.clone()),
            ..exec.clone()
        };
        let policy =
            crate::command_policy::Exec::sandbox(&live.tenant, ACTOR, live.id.as_str(), &judged);
        crate::command_policy::enforce(st, &policy)
            .await
            .map_err(|e| from_api(e.into()))?;
        crate::metrics::exec();
        st.audit(
            &live.tenant,
            Audit {
                actor: ACTOR,
                action: Action::SandboxExec,
                target: &format!("{}:{}", live.id, config.cmd),
                outcome: "started (e2b)",
            },
        )
        .await
        .map_err(from_api)?;
        let pid = live.client.spawn(exec).await.map_err(from_client)?;
        prune(&live, envd).await;
        envd.remember(
            pid,
            ProcMeta {
                config,
                tag: req.tag,
                pty: pty.is_some(),
            },
        );
        // Replay: whatever it printed between starting and this request.
        let output = live
            .client
            .stream(Request::Attach { pid, replay: true })
            .map_err(from_client)?;
        Ok((pid, pty.is_some(), output))
    }
    .await;
    match started {
        Ok((pid, pty, output)) => call.stream(move |sink| async move {
            pump(live, pid, pty, output, sink, |event| StartResponse {
                event: Some(event),
            })
            .await
        }),
        Err(e) => super::rpc::fail(call.shape, call.codec, e),
    }
}

pub async fn connect(live: Arc<Live>, envd: &EnvdState, call: &Call) -> Response {
    let attached = async {
        let req: ConnectRequest = call.message(Shape::Stream)?;
        let pid = select(&live, envd, req.process).await?;
        // envd knows running processes only: one that has ended is gone.
        ensure_running(&live, pid).await?;
        let pty = envd.meta(pid).is_some_and(|m| m.pty);
        live.client
            .stream(Request::Attach { pid, replay: false })
            .map(|s| (pid, pty, s))
            .map_err(from_client)
    }
    .await;
    match attached {
        Ok((pid, pty, output)) => call.stream(move |sink| async move {
            pump(live, pid, pty, output, sink, |event| ConnectResponse {
                event: Some(event),
            })
            .await
        }),
        Err(e) => super::rpc::fail(call.shape, call.codec, e),
    }
}

pub async fn list(live: &Live, envd: &EnvdState) -> Result<ListResponse, Error> {
    let procs = live.client.list_processes().await.map_err(from_client)?;
    let processes = procs
        .into_iter()
        .filter(|p| p.exit.is_none())
        .map(|p| {
            let meta = envd.meta(p.pid);
            ProcessInfo {
                config: Some(match &meta {
                    Some(m) => m.config.clone(),
                    None => config_of(&p.command),
                }),
                pid: p.pid,
                tag: meta.and_then(|m| m.tag),
            }
        })
        .collect();
    Ok(ListResponse { processes })
}

pub async fn send_input(
    st: &Shared,
    live: &Live,
    envd: &EnvdState,
    req: SendInputRequest,
) -> Result<SendInputResponse, Error> {
    let pid = select(live, envd, req.process).await?;
    match req.input.and_then(|i| i.input) {
        // What is typed at a terminal goes where stdin goes: the init
        // writes it to the process's terminal.
        Some(process_input::Input::Stdin(data) | process_input::Input::Pty(data)) => {
            let fed = match live.client.stdin(pid, &data).await {
                Ok(()) => Ok(()),
                // A process that has ended is "not found" to envd, whatever
                // the init says about its stdin.
                Err(e) => Err(ensure_running(live, pid)
                    .await
                    .err()
                    .unwrap_or_else(|| from_client(e))),
            };
            let size = format!("{} bytes", data.len());
            super::audit::record(
                st,
                live,
                Action::SandboxStdin,
                &pid.to_string(),
                &size,
                &fed,
            )
            .await?;
            fed?;
        }
        None => {}
    }
    Ok(SendInputResponse {})
}

pub async fn close_stdin(
    st: &Shared,
    live: &Live,
    envd: &EnvdState,
    process: Option<warden_envd_wire::process::ProcessSelector>,
) -> Result<(), Error> {
    let pid = select(live, envd, process).await?;
    let closed = live.client.close_stdin(pid).await.map_err(from_client);
    super::audit::record(
        st,
        live,
        Action::SandboxStdinClose,
        &pid.to_string(),
        "",
        &closed,
    )
    .await?;
    closed
}

pub async fn send_signal(
    live: &Live,
    envd: &EnvdState,
    req: SendSignalRequest,
) -> Result<SendSignalResponse, Error> {
    let signal = match Signal::try_from(req.signal) {
        Ok(Signal::Sigkill) => libc::SIGKILL,
        Ok(Signal::Sigterm) => libc::SIGTERM,
        _ => return Err(Error::invalid_argument("signal must be SIGTERM or SIGKILL")),
    };
    let pid = select(live, envd, req.process).await?;
    live.client.signal(pid, signal).await.map_err(from_client)?;
    Ok(SendSignalResponse {})
}

pub async fn update(
    live: &Live,
    envd: &EnvdState,
    req: UpdateRequest,
) -> Result<UpdateResponse, Error> {
    let pid = select(live, envd, req.process).await?;
    if let Some(pty) = &req.pty {
        let size = pty_size(pty)?;
        match live.client.resize(pid, size).await {
            Ok(()) => {}
            Err(e) => {
                return Err(ensure_running(live, pid)
                    .await
                    .err()
                    .unwrap_or_else(|| from_client(e)))
            }
        }
    }
    Ok(UpdateResponse {})
}

/// The pid a selector names: a pid as is (the init says whether it
/// exists), a tag as the running process started with it.
async fn select(
    live: &Live,
    envd: &EnvdState,
    selector: Option<warden_envd_wire::process::ProcessSelector>,
) -> Result<u32, Error> {
    match selector.and_then(|s| s.selector) {
        Some(process_selector::Selector::Pid(pid)) => Ok(pid),
        Some(process_selector::Selector::Tag(tag)) => {
            let tagged = envd.pids_tagged(&tag);
            if !tagged.is_empty() {
                let procs = live.client.list_processes().await.map_err(from_client)?;
                if let Some(p) = procs
                    .iter()
                    .rev()
                    .find(|p| p.exit.is_none() && tagged.contains(&p.pid))
                {
                    return Ok(p.pid);
                }
            }
            Err(Error::not_found(format!(
                "no running process is tagged {tag:?}"
            )))
        }
        None => Err(Error::invalid_argument(
            "process (a pid or a tag) is required",
        )),
    }
}

/// `not_found` unless `pid` is a running process.
async fn ensure_running(live: &Live, pid: u32) -> Result<(), Error> {
    let procs = live.client.list_processes().await.map_err(from_client)?;
    match procs.iter().find(|p| p.pid == pid) {
        Some(p) if p.exit.is_none() => Ok(()),
        _ => Err(Error::not_found(format!("process {pid} is not running"))),
    }
}

/// Forgets exited processes once many have been remembered.
async fn prune(live: &Live, envd: &EnvdState) {
    if envd.needs_pruning() {
        if let Ok(procs) = live.client.list_processes().await {
            let running: Vec<u32> = procs
                .iter()
                .filter(|p| p.exit.is_none())
                .map(|p| p.pid)
                .collect();
            envd.retain_running(&running);
        }
    }
}

fn event(e: ev::Event) -> ProcessEvent {
    ProcessEvent { event: Some(e) }
}

fn data(out: ev::data_event::Output) -> ProcessEvent {
    event(ev::Event::Data(ev::DataEvent { output: Some(out) }))
}

/// The end event as Go's `os.ProcessState` would describe it.
pub fn end_event(s: ExitStatus) -> ev::EndEvent {
    match (s.code, s.signal) {
        (Some(code), _) => ev::EndEvent {
            exit_code: code,
            exited: true,
            status: format!("exit status {code}"),
            error: None,
        },
        (None, Some(sig)) => ev::EndEvent {
            exit_code: -1,
            exited: false,
            status: format!("signal: {}", signal_name(sig)),
            error: s.timed_out.then(|| "the command timed out".to_string()),
        },
        (None, None) => ev::EndEvent {
            exit_code: -1,
            exited: false,
            status: "unknown".into(),
            error: Some("the process ended without an exit status".into()),
        },
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "killed".into(),
        libc::SIGTERM => "terminated".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGHUP => "hangup".into(),
        libc::SIGPIPE => "broken pipe".into(),
        libc::SIGABRT => "aborted".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        n => format!("signal {n}"),
    }
}

/// Streams one process's events: start, its output (secrets masked), its
/// end; keep-alives while it is quiet. Ends early, leaving the process
/// running, when the client goes away or the call's deadline passes.
async fn pump<T, F>(
    live: Arc<Live>,
    pid: u32,
    pty: bool,
    mut output: ResponseStream,
    sink: Sink,
    wrap: F,
) where
    T: warden_envd_wire::prost::Message + serde::Serialize,
    F: Fn(ProcessEvent) -> T,
{
    if !sink
        .send(&wrap(event(ev::Event::Start(ev::StartEvent { pid }))))
        .await
    {
        return;
    }
    let mut out = MaskStream::new(live.masker.clone());
    let mut err = MaskStream::new(live.masker.clone());
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        let next = tokio::select! {
            r = output.next() => r,
            _ = keepalive.tick() => {
                if !sink.send(&wrap(event(ev::Event::Keepalive(ev::KeepAlive {})))).await {
                    return;
                }
                continue;
            }
            _ = sink.deadline() => {
                sink.fail(Error::deadline_exceeded(
                    "the call's deadline passed; the process goes on running",
                )).await;
                return;
            }
            _ = sink.closed() => return,
        };
        let msg = match next {
            // The masker may hold back a chunk that could begin a secret:
            // nothing to send yet.
            Ok(Some(R::Stdout(d))) => match out.push(&d) {
                b if b.is_empty() => continue,
                b if pty => data(ev::data_event::Output::Pty(b)),
                b => data(ev::data_event::Output::Stdout(b)),
            },
            Ok(Some(R::Stderr(d))) => match err.push(&d) {
                b if b.is_empty() => continue,
                b => data(ev::data_event::Output::Stderr(b)),
            },
            Ok(Some(R::Started { .. })) => continue,
            Ok(Some(R::Exited(status))) => {
                for (rest, stdout) in [(out.finish(), true), (err.finish(), false)] {
                    if !rest.is_empty() {
                        let o = match (stdout, pty) {
                            (true, true) => ev::data_event::Output::Pty(rest),
                            (true, false) => ev::data_event::Output::Stdout(rest),
                            (false, _) => ev::data_event::Output::Stderr(rest),
                        };
                        if !sink.send(&wrap(data(o))).await {
                            return;
                        }
                    }
                }
                sink.send(&wrap(event(ev::Event::End(end_event(status)))))
                    .await;
                return;
            }
            Ok(Some(other)) => {
                sink.fail(Error::internal(format!(
                    "unexpected answer from the init: {other:?}"
                )))
                .await;
                return;
            }
            // The sandbox ended under the process (killed, timed out).
            Ok(None) | Err(warden_protocol::ClientError::Disconnected) => {
                sink.cut().await;
                return;
            }
            Err(e) => {
                sink.fail(from_client(e)).await;
                return;
            }
        };
        if !sink.send(&wrap(msg)).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_events_read_like_go() {
        let e = end_event(ExitStatus {
            code: None,
            signal: Some(libc::SIGKILL),
            timed_out: false,
        });
        assert_eq!(
            (e.exit_code, e.exited, e.status.as_str()),
            (-1, false, "signal: killed")
        );
        let e = end_event(ExitStatus {
            code: Some(0),
            signal: None,
            timed_out: false,
        });
        assert_eq!(
            (e.exit_code, e.exited, e.status.as_str()),
            (0, true, "exit status 0")
        );
    }
}

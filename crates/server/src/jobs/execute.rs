//! A review job's command in its sandbox: run it, log its output as it
//! comes, stop it on cancel or a lost lease, and say how it ended.

use super::logs::{self, LogWriter, MaskedLog};
use crate::api_reviews::SubmitReview;
use crate::manager::Live;
use crate::state::Shared;
use tokio::sync::Notify;
use warden_protocol::{ExecRequest, ExitStatus, Response};
use warden_store::jobs::ReviewRecord;

pub(super) enum Ran {
    Exited {
        status: ExitStatus,
        cancelled: bool,
        /// Output was dropped at the log's cap.
        log_truncated: bool,
    },
    Broken(String),
    /// The sandbox went away under the command.
    Gone(String),
    HandBack(String),
    LeaseLost,
}

/// The command's channel closed: the sandbox was destroyed (by its
/// tenant, a tenant disable, a timeout, the shutdown) or its init died.
fn gone(st: &Shared, live: &Live, e: &warden_protocol::ClientError) -> Ran {
    if st.draining() {
        return Ran::HandBack(format!("its sandbox was stopped: {e}"));
    }
    Ran::Gone(match live.end_reason() {
        Some(reason) => {
            format!("the job's sandbox was destroyed while the command ran ({reason})")
        }
        None => format!("the job's sandbox stopped answering: its init exited ({e})"),
    })
}

/// Runs the command, logging its output as it comes; stops it on cancel or
/// when the lease is lost.
pub(super) async fn execute(
    st: &Shared,
    job: &ReviewRecord,
    spec: &SubmitReview,
    live: &Live,
    timeout: u64,
    cancel: &Notify,
    lost: &Notify,
) -> Ran {
    let client = &live.client;
    let Some(command) = spec.to_command() else {
        return Ran::Broken("the job has no command".into());
    };
    let mut req = ExecRequest::argv(Vec::<String>::new());
    req.command = command;
    req.timeout_ms = Some(timeout * 1000);
    let path = logs::path(&st.logs_dir(), job.id.as_str());
    let mut log = match LogWriter::open_capped(&path, st.cfg.limits.max_job_log_bytes).await {
        // The log is masked with the sandbox's secrets' values.
        Ok(l) => MaskedLog::new(l, live.masker.clone()),
        Err(e) => return Ran::Broken(format!("opening the log: {e}")),
    };
    let _ = log.note(&format!("attempt {} started", job.attempts)).await;
    let mut stream = match client.stream(warden_protocol::Request::Exec(req)) {
        Ok(s) => s,
        Err(e @ warden_protocol::ClientError::Disconnected) => return gone(st, live, &e),
        Err(e) => return Ran::Broken(format!("starting the command: {e}")),
    };
    let mut pid = None;
    let mut cancelled = false;
    loop {
        let next = tokio::select! {
            r = stream.next() => r,
            _ = cancel.notified(), if !cancelled => {
                cancelled = true;
                let _ = log.note("cancel requested: stopping the command").await;
                if let Some(p) = pid {
                    let _ = client.signal(p, libc::SIGKILL).await;
                }
                continue;
            }
            _ = lost.notified() => {
                let _ = log.note("another node took over this job").await;
                return Ran::LeaseLost;
            }
        };
        match next {
            Ok(Some(Response::Started { pid: p })) => {
                pid = Some(p);
                if cancelled {
                    let _ = client.signal(p, libc::SIGKILL).await;
                }
            }
            Ok(Some(Response::Stdout(d))) => {
                let _ = log.write(logs::STDOUT, &d).await;
            }
            Ok(Some(Response::Stderr(d))) => {
                let _ = log.write(logs::STDERR, &d).await;
            }
            Ok(Some(Response::Exited(status))) => {
                let how = match (status.code, status.signal) {
                    _ if status.timed_out => "timed out: killed".to_string(),
                    (Some(c), _) => format!("exited with code {c}"),
                    (None, Some(s)) => format!("killed by signal {s}"),
                    (None, None) => "ended".to_string(),
                };
                let _ = log.end_streams().await;
                let _ = log.note(&how).await;
                let _ = log.flush().await;
                return Ran::Exited {
                    status,
                    cancelled,
                    log_truncated: log.truncated(),
                };
            }
            Ok(Some(other)) => return Ran::Broken(format!("unexpected reply {other:?}")),
            Ok(None) => return Ran::Broken("the command's stream ended early".into()),
            Err(e) => {
                if let Some(kind) = e.remote_kind() {
                    // The command could not start: the job's own failure.
                    let code = match kind {
                        warden_protocol::ErrorKind::NotFound => 127,
                        _ => 126,
                    };
                    let _ = log.write(logs::STDERR, format!("{e}\n").as_bytes()).await;
                    let _ = log.end_streams().await;
                    let _ = log.flush().await;
                    return Ran::Exited {
                        status: ExitStatus {
                            code: Some(code),
                            signal: None,
                            timed_out: false,
                        },
                        cancelled,
                        log_truncated: log.truncated(),
                    };
                }
                if !matches!(e, warden_protocol::ClientError::Disconnected) {
                    return Ran::Broken(format!("the sandbox answered badly: {e}"));
                }
                let ran = gone(st, live, &e);
                if let Ran::Gone(why) = &ran {
                    let _ = log.note(why).await;
                    let _ = log.flush().await;
                }
                return ran;
            }
        }
    }
}

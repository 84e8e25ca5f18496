//! Starting commands in a sandbox: exec as SSE or JSON, foreground or in
//! the background, and the output streaming shared with `processes.rs`
//! (list, attach, stdin, signal, wait).

use crate::auth::Caller;
use crate::error::init_error;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::exec_budget::ExecCharge;
pub use crate::routes::exec_json::ExecResult;
use crate::routes::exec_json::{self, Kept};
use crate::secrets::{MaskStream, Masker};
use crate::service::audit::{Action, Audit};
use crate::service::sandboxes::live;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use utoipa::ToSchema;
use warden_protocol::{
    Client, Command, ExecRequest, ExitStatus, Request, Response as R, ResponseStream,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// argv; give this or `shell`.
    pub command: Option<Vec<String>>,
    /// A line for `/bin/sh -c`.
    pub shell: Option<String>,
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Kills the command's process group after this long.
    pub timeout_secs: Option<f64>,
    /// Written to the command's stdin, which is then closed.
    pub stdin: Option<String>,
    /// Carry cwd and env between calls naming the same session.
    pub session: Option<String>,
    #[serde(default)]
    pub background: bool,
    /// With `background`: keep the command's stdin open (after `stdin`,
    /// if given) to type into through `/processes/{pid}/stdin`, closed
    /// with `?close=true`.
    #[serde(default)]
    pub stdin_open: bool,
    /// Run on a terminal of this size: stdin, stdout and stderr are one
    /// pseudo-terminal (its output arrives as `stdout` only); with
    /// `background`, type into it through `/processes/{pid}/stdin` and
    /// resize it through `/processes/{pid}/resize`.
    pub tty: Option<TtySize>,
}

/// A terminal's size in characters (1 to 4096 each).
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct TtySize {
    pub cols: u16,
    pub rows: u16,
}

impl TtySize {
    pub fn checked(self) -> ApiResult<warden_protocol::PtySize> {
        if !(1..=4096).contains(&self.cols) || !(1..=4096).contains(&self.rows) {
            return Err(ApiError::bad_request("tty cols and rows must be 1 to 4096"));
        }
        Ok(warden_protocol::PtySize {
            cols: self.cols,
            rows: self.rows,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Exit {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Exit {
        Exit {
            exit_code: s.code,
            signal: s.signal,
            timed_out: s.timed_out,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Pid {
    pub pid: u32,
}

/// The init's request, what to write to stdin, and whether stdin stays
/// open after it.
fn to_request(b: ExecBody) -> ApiResult<(ExecRequest, Option<String>, bool)> {
    let command = match (b.command, b.shell) {
        (Some(argv), None) if !argv.is_empty() => Command::Argv(argv),
        (None, Some(line)) => Command::Shell(line),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `command` (a non-empty argv) or `shell`",
            ))
        }
    };
    if b.stdin_open && !b.background {
        return Err(ApiError::bad_request(
            "stdin_open is for background commands (a foreground one takes `stdin`)",
        ));
    }
    let timeout_ms = match b.timeout_secs {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 && t <= 86_400.0 => Some((t * 1000.0) as u64),
        Some(_) => {
            return Err(ApiError::bad_request(
                "timeout_secs must be > 0 and ≤ 86400",
            ))
        }
    };
    for k in b.env.keys() {
        warden_spec::check_env_name(k).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let pty = b.tty.map(TtySize::checked).transpose()?;
    let req = ExecRequest {
        command,
        cwd: b.cwd,
        env: b.env.into_iter().collect(),
        stdin: b.stdin.is_some() || b.stdin_open,
        timeout_ms,
        background: b.background,
        session: b.session,
        pty,
    };
    Ok((req, b.stdin, b.stdin_open))
}

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/exec", tag = "sandboxes", request_body = ExecBody,
    responses((status = 200, body = ExecResult, description = "JSON mode; with `Accept: text/event-stream`, SSE events started/stdout/stderr/exit/error"),
              (status = 202, body = Pid, description = "background"),
              (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "`command_denied`: refused by the tenant's command policy (the reason is in the message)"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "`policy_unavailable`: the command policy hook failed; the command was not run")))]
pub async fn exec(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ExecBody>,
) -> ApiResult<Response> {
    let live = live(&st, &caller, &id).await?;
    let (req, stdin, stdin_open) = to_request(body)?;
    // Before anything reaches the sandbox (foreground, background and
    // session execs all come through here).
    let tenant = caller.store.tenant_id();
    let exec = crate::command_policy::Exec::sandbox(tenant, caller.actor(), live.id.as_str(), &req);
    crate::command_policy::enforce(&st, &exec).await?;
    let sse_mode = wants_sse(&headers);
    crate::metrics::exec();
    let what = match &req.command {
        Command::Argv(a) => a.first().cloned().unwrap_or_default(),
        Command::Shell(_) => "sh -c".into(),
    };
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxExec,
            target: &format!("{}:{what}", live.id),
            outcome: if req.background {
                "started in background"
            } else {
                "started"
            },
        },
    )
    .await?;
    let client = live.client.clone();
    if req.background {
        let pid = client.spawn(req).await.map_err(init_error)?;
        match stdin {
            Some(text) if stdin_open => client
                .stdin(pid, text.as_bytes())
                .await
                .map_err(init_error)?,
            Some(text) => feed_stdin(&client, pid, text.into_bytes()).await?,
            None => {}
        }
        return Ok((StatusCode::ACCEPTED, Json(Pid { pid })).into_response());
    }
    let stream = client.stream(Request::Exec(req)).map_err(init_error)?;
    if sse_mode {
        let stdin = stdin.map(String::into_bytes);
        return Ok(sse(client, stream, stdin, true, live.masker.clone()).into_response());
    }
    let charge = ExecCharge::new(&st.buffers, tenant, st.cfg.server.exec_output_tenant_bytes);
    let kept = Kept::new(st.cfg.server.exec_output_bytes, charge);
    exec_json::answer(
        client,
        stream,
        stdin.map(String::into_bytes),
        live.masker.clone(),
        kept,
    )
    .await
}

async fn feed_stdin(client: &Client, pid: u32, data: Vec<u8>) -> ApiResult<()> {
    client.stdin(pid, &data).await.map_err(init_error)?;
    client.close_stdin(pid).await.map_err(init_error)
}

/// Kills a foreground command whose HTTP client went away.
struct KillOnDrop {
    client: Client,
    pid: Option<u32>,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let (true, Some(pid)) = (self.armed, self.pid) {
            let c = self.client.clone();
            tokio::spawn(async move {
                let _ = c.signal(pid, libc::SIGKILL).await;
            });
        }
    }
}

struct SseState {
    stream: ResponseStream,
    stdin: Option<Vec<u8>>,
    guard: KillOnDrop,
    done: bool,
    /// Secret values masked per stream; what was released but not sent.
    out: MaskStream,
    err: MaskStream,
    queued: VecDeque<Event>,
}

impl SseState {
    /// Queues an output event for what the masker released (if anything).
    fn output(&mut self, tag: &str, data: Vec<u8>) {
        if !data.is_empty() {
            self.queued
                .push_back(event(tag, serde_json::json!({ "data": B64.encode(data) })));
        }
    }

    /// The output ended: queues what the maskers held back.
    fn end_output(&mut self) {
        let (out, err) = (self.out.finish(), self.err.finish());
        self.output("stdout", out);
        self.output("stderr", err);
    }
}

fn event(name: &str, data: serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// SSE mode: one event per protocol message, as they arrive (output with
/// the sandbox's secret values masked).
pub fn sse(
    client: Client,
    stream: ResponseStream,
    stdin: Option<Vec<u8>>,
    kill_on_disconnect: bool,
    masker: Option<Arc<Masker>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let state = SseState {
        stream,
        stdin,
        guard: KillOnDrop {
            client,
            pid: None,
            armed: kill_on_disconnect,
        },
        done: false,
        out: MaskStream::new(masker.clone()),
        err: MaskStream::new(masker),
        queued: VecDeque::new(),
    };
    let events = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(ev) = s.queued.pop_front() {
                return Some((Ok(ev), s));
            }
            if s.done {
                return None;
            }
            next_events(&mut s).await;
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Reads the next protocol message and queues its events.
async fn next_events(s: &mut SseState) {
    let ev = match s.stream.next().await {
        Ok(Some(R::Started { pid })) => {
            s.guard.pid = Some(pid);
            if let Some(data) = s.stdin.take() {
                let c = s.guard.client.clone();
                tokio::spawn(async move {
                    let _ = c.stdin(pid, &data).await;
                    let _ = c.close_stdin(pid).await;
                });
            }
            event("started", serde_json::json!({ "pid": pid }))
        }
        Ok(Some(R::Stdout(d))) => {
            let d = s.out.push(&d);
            return s.output("stdout", d);
        }
        Ok(Some(R::Stderr(d))) => {
            let d = s.err.push(&d);
            return s.output("stderr", d);
        }
        Ok(Some(R::Exited(st))) => {
            s.done = true;
            s.end_output();
            s.guard.armed = false;
            event(
                "exit",
                serde_json::to_value(Exit::from(st)).unwrap_or_default(),
            )
        }
        Ok(Some(other)) => {
            s.done = true;
            event(
                "error",
                serde_json::json!({"code": "internal", "message": format!("unexpected {other:?}")}),
            )
        }
        Ok(None) => {
            s.done = true;
            return s.end_output();
        }
        Err(e) => {
            s.done = true;
            s.guard.armed = false;
            s.end_output();
            let api = init_error(e);
            event(
                "error",
                serde_json::json!({"code": api.code, "message": api.message}),
            )
        }
    };
    s.queued.push_back(ev);
}

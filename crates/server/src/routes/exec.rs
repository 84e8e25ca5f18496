//! Starting commands in a sandbox: exec as SSE or JSON, foreground or in
//! the background, and the output streaming shared with `processes.rs`
//! (list, attach, stdin, signal, wait).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::exec_budget::{Cut, ExecCharge};
use crate::routes::sandboxes::live;
use crate::secrets::{MaskStream, Masker};
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
    Client, ClientError, Command, ErrorKind, ExecRequest, ExitStatus, Request, Response as R,
    ResponseStream,
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
}

#[derive(Serialize, ToSchema)]
pub struct ExecResult {
    pub pid: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// True when stdout went past the server's cap on buffered output
    /// (`[server] exec_output_bytes`, 1 MiB by default) and the rest was
    /// dropped; use SSE mode to get all of it.
    pub stdout_truncated: bool,
    /// The same for stderr.
    pub stderr_truncated: bool,
    /// Either stream was truncated.
    pub truncated: bool,
    /// The limit that cut the output when `truncated`:
    /// `exec_output_bytes` (this exec's cap per stream),
    /// `exec_output_tenant_bytes` (what the tenant's JSON-mode execs in
    /// flight may buffer together) or `buffers_total_bytes` (what the
    /// server buffers for all tenants). The command ran to its end either
    /// way; use SSE mode to get all of its output.
    pub truncated_by: Option<&'static str>,
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

fn to_request(b: ExecBody) -> ApiResult<(ExecRequest, Option<String>)> {
    let command = match (b.command, b.shell) {
        (Some(argv), None) if !argv.is_empty() => Command::Argv(argv),
        (None, Some(line)) => Command::Shell(line),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of `command` (a non-empty argv) or `shell`",
            ))
        }
    };
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
    let req = ExecRequest {
        command,
        cwd: b.cwd,
        env: b.env.into_iter().collect(),
        stdin: b.stdin.is_some(),
        timeout_ms,
        background: b.background,
        session: b.session,
    };
    Ok((req, b.stdin))
}

/// What an init error means for an HTTP client.
pub fn init_error(e: ClientError) -> ApiError {
    match e {
        ClientError::Remote(r) => {
            let (status, code) = match r.kind {
                ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
                ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
                ErrorKind::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
                ErrorKind::DirectoryNotEmpty => (StatusCode::CONFLICT, "directory_not_empty"),
                ErrorKind::NotADirectory => (StatusCode::BAD_REQUEST, "not_a_directory"),
                ErrorKind::IsADirectory => (StatusCode::BAD_REQUEST, "is_a_directory"),
                ErrorKind::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, "no_space"),
                ErrorKind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
                ErrorKind::BadRequest | ErrorKind::Unsupported => {
                    (StatusCode::BAD_REQUEST, "bad_request")
                }
                ErrorKind::Io => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
            };
            ApiError::new(status, code, r.message)
        }
        ClientError::Disconnected => {
            ApiError::conflict("the sandbox ended while the request was in flight")
        }
        e => ApiError::internal("talking to the sandbox", e),
    }
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
    let (req, stdin) = to_request(body)?;
    // Before anything reaches the sandbox (foreground, background and
    // session execs all come through here).
    let tenant = caller.store.tenant_id();
    let exec = crate::policy::Exec::sandbox(tenant, caller.actor(), live.id.as_str(), &req);
    crate::policy::enforce(&st, &exec).await?;
    let sse_mode = wants_sse(&headers);
    crate::metrics::exec();
    let what = match &req.command {
        Command::Argv(a) => a.first().cloned().unwrap_or_default(),
        Command::Shell(_) => "sh -c".into(),
    };
    st.audit(
        caller.store.tenant_id(),
        caller.actor(),
        "sandbox.exec",
        &format!("{}:{what}", live.id),
        if req.background {
            "started in background"
        } else {
            "started"
        },
    )
    .await?;
    let client = live.client.clone();
    if req.background {
        let pid = client.spawn(req).await.map_err(init_error)?;
        if let Some(text) = stdin {
            feed_stdin(&client, pid, text.into_bytes()).await?;
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
    let (result, charge) = collect(
        client,
        stream,
        stdin.map(String::into_bytes),
        live.masker.clone(),
        kept,
    )
    .await?;
    Ok(answer_holding(&result, charge))
}

/// The JSON answer, with the exec's charge held until the body has been
/// handed over: the output stays charged for as long as the server holds
/// it in any form.
fn answer_holding(result: &ExecResult, charge: ExecCharge) -> Response {
    let body = match serde_json::to_vec(result) {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => return ApiError::internal("encoding the answer", e).into_response(),
    };
    enum Part {
        Body(bytes::Bytes, ExecCharge),
        Sent(ExecCharge),
    }
    let parts = futures::stream::unfold(Some(Part::Body(body, charge)), |part| async move {
        match part? {
            Part::Body(b, c) => Some((Ok::<_, Infallible>(b), Some(Part::Sent(c)))),
            Part::Sent(c) => {
                drop(c);
                None
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(parts),
    )
        .into_response()
}

async fn feed_stdin(client: &Client, pid: u32, data: Vec<u8>) -> ApiResult<()> {
    client.stdin(pid, &data).await.map_err(init_error)?;
    client.close_stdin(pid).await.map_err(init_error)
}

/// A JSON-mode exec's output: at most `cap` bytes of each stream, each
/// kept byte charged to the tenant's and the server's buffers. Past the
/// first limit reached, a stream keeps nothing more (no holes in the
/// middle); what comes after is read, so the command is not held up, and
/// dropped.
struct Kept {
    out: Vec<u8>,
    err: Vec<u8>,
    out_cut: Option<Cut>,
    err_cut: Option<Cut>,
    cap: usize,
    charge: ExecCharge,
}

#[derive(Clone, Copy)]
enum Which {
    Out,
    Err,
}

impl Kept {
    fn new(cap: usize, charge: ExecCharge) -> Kept {
        Kept {
            out: Vec::new(),
            err: Vec::new(),
            out_cut: None,
            err_cut: None,
            cap,
            charge,
        }
    }

    fn push(&mut self, which: Which, d: &[u8]) {
        let (buf, cut) = match which {
            Which::Out => (&mut self.out, &mut self.out_cut),
            Which::Err => (&mut self.err, &mut self.err_cut),
        };
        if cut.is_some() || d.is_empty() {
            return;
        }
        let room = self.cap.saturating_sub(buf.len());
        let d = if d.len() > room {
            *cut = Some(Cut::Stream);
            &d[..room]
        } else {
            d
        };
        let (n, by) = self.charge.take(d);
        buf.extend_from_slice(&d[..n]);
        if by.is_some() {
            *cut = by;
        }
    }

    /// Fills in the answer's output and what cut it; gives up the charge,
    /// which must outlive the answer.
    fn finish(self, out: &mut ExecResult) -> ExecCharge {
        out.stdout_truncated = self.out_cut.is_some();
        out.stderr_truncated = self.err_cut.is_some();
        out.truncated = out.stdout_truncated || out.stderr_truncated;
        out.truncated_by = self.out_cut.or(self.err_cut).map(Cut::key);
        out.stdout = text(self.out);
        out.stderr = text(self.err);
        self.charge
    }
}

/// The text, given up as it is made: the bytes and the string never both
/// stay in memory longer than the conversion.
fn text(buf: Vec<u8>) -> String {
    match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// JSON mode: run to the end, keep what `kept` allows of each stream
/// (masked before any cut, so a cut never splits a value into view). The
/// server's memory per request is bounded by the cap and the budgets,
/// however much the command prints.
async fn collect(
    client: Client,
    mut stream: ResponseStream,
    mut stdin: Option<Vec<u8>>,
    masker: Option<Arc<Masker>>,
    mut kept: Kept,
) -> ApiResult<(ExecResult, ExecCharge)> {
    let (mut mo, mut me) = (MaskStream::new(masker.clone()), MaskStream::new(masker));
    let mut out = ExecResult {
        pid: 0,
        exit_code: None,
        signal: None,
        timed_out: false,
        stdout: String::new(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        truncated: false,
        truncated_by: None,
    };
    loop {
        match stream.next().await {
            Ok(Some(R::Started { pid })) => {
                out.pid = pid;
                if let Some(data) = stdin.take() {
                    let c = client.clone();
                    tokio::spawn(async move {
                        let _ = c.stdin(pid, &data).await;
                        let _ = c.close_stdin(pid).await;
                    });
                }
            }
            Ok(Some(R::Stdout(d))) => kept.push(Which::Out, &mo.push(&d)),
            Ok(Some(R::Stderr(d))) => kept.push(Which::Err, &me.push(&d)),
            Ok(Some(R::Exited(s))) => {
                out.exit_code = s.code;
                out.signal = s.signal;
                out.timed_out = s.timed_out;
                break;
            }
            Ok(Some(other)) => {
                return Err(ApiError::internal("exec", format!("unexpected {other:?}")))
            }
            Ok(None) => break,
            // The shell convention: 127 not found, 126 cannot execute.
            Err(ClientError::Remote(r)) if r.kind == ErrorKind::NotFound => {
                out.exit_code = Some(127);
                kept.push(Which::Err, r.message.as_bytes());
                break;
            }
            Err(ClientError::Remote(r)) if r.kind == ErrorKind::PermissionDenied => {
                out.exit_code = Some(126);
                kept.push(Which::Err, r.message.as_bytes());
                break;
            }
            Err(e) => return Err(init_error(e)),
        }
    }
    kept.push(Which::Out, &mo.finish());
    kept.push(Which::Err, &me.finish());
    let charge = kept.finish(&mut out);
    Ok((out, charge))
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

//! JSON-mode exec: the command runs to its end while its output is kept
//! within the per-stream cap and the buffers' budgets (`exec_budget.rs`),
//! then one JSON answer says what was kept and what cut the rest.

use crate::error::{init_error, ApiError, ApiResult};
use crate::routes::exec_budget::{Cut, ExecCharge};
use crate::secrets::{MaskStream, Masker};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use utoipa::ToSchema;
use warden_protocol::{Client, ClientError, ErrorKind, Response as R, ResponseStream};

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

/// Runs the exec to its end and answers with what was kept; the charge is
/// held until the answer has been handed over.
pub async fn answer(
    client: Client,
    stream: ResponseStream,
    stdin: Option<Vec<u8>>,
    masker: Option<Arc<Masker>>,
    kept: Kept,
) -> ApiResult<Response> {
    let (result, charge) = collect(client, stream, stdin, masker, kept).await?;
    Ok(holding(&result, charge))
}

/// The JSON answer, with the exec's charge held until the body has been
/// handed over: the output stays charged for as long as the server holds
/// it in any form.
fn holding(result: &ExecResult, charge: ExecCharge) -> Response {
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

/// A JSON-mode exec's output: at most `cap` bytes of each stream, each
/// kept byte charged to the tenant's and the server's buffers. Past the
/// first limit reached, a stream keeps nothing more (no holes in the
/// middle); what comes after is read, so the command is not held up, and
/// dropped.
pub struct Kept {
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
    pub fn new(cap: usize, charge: ExecCharge) -> Kept {
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

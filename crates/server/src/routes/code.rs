//! `/v1/sandboxes/{id}/code`: the code interpreter for Warden's own
//! clients (`crate::code`): run code in a stateful context and get its
//! output, rich results and error as one JSON answer; make, list, restart
//! and remove contexts. The interpreter starts in the sandbox on first use
//! (an image with Python and `python3-ipykernel`, as `python-data` has).

use crate::auth::Caller;
use crate::code::client::{call, small_body, Answer};
use crate::code::lines::{mask_strings, Line, Lines};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::exec_budget::ExecCharge;
use crate::service::audit::{Action, Audit};
use crate::service::sandboxes::live;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a run may take unless it says otherwise, and at most.
const DEFAULT_TIMEOUT_SECS: u64 = 300;
const MAX_TIMEOUT_SECS: u64 = 3600;
/// Contexts and error answers are small.
const SMALL: usize = 1 << 20;

#[derive(Deserialize, ToSchema)]
pub struct RunCode {
    /// The code, in the context's language.
    pub code: String,
    /// A context made with `POST .../code/contexts`; default: the
    /// language's default context, shared by runs that name none.
    pub context_id: Option<String>,
    /// `python` (the default), `javascript` (`js`), `typescript` (`ts`),
    /// `r` or `bash`, where the image has that kernel (`python-data` has
    /// them all); give this or `context_id`, not both.
    pub language: Option<String>,
    /// Environment variables for this run only (names: letters, digits
    /// and `_`, not starting with a digit).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Stop waiting after this long and interrupt the run; default 300,
    /// at most 3600.
    pub timeout_secs: Option<u64>,
}

/// A result: each MIME type the code displayed, in its field (`text`,
/// `html`, `markdown`, `svg`, `png` and `jpeg` as base64, `pdf`, `latex`,
/// `json`, `javascript`; others under `extra`), and whether it is the
/// value of the last line (`is_main_result`) or a display (a figure).
pub type CodeResult = Value;

#[derive(Serialize, ToSchema)]
pub struct CodeError {
    pub name: String,
    pub value: String,
    pub traceback: String,
}

#[derive(Serialize, ToSchema, Default)]
pub struct CodeRun {
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<CodeResult>,
    pub stdout: String,
    pub stderr: String,
    /// The exception the code raised, if it did.
    pub error: Option<CodeError>,
    pub execution_count: Option<u64>,
    /// The run passed `timeout_secs` and was interrupted.
    pub timed_out: bool,
    /// Output past `exec_output_tenant_bytes` or `buffers_total_bytes` was
    /// dropped (the run went on).
    pub truncated: bool,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct NewContext {
    /// `python` (default), `javascript` (`js`), `typescript` (`ts`), `r`
    /// or `bash`.
    pub language: Option<String>,
    /// Its working directory; default the sandbox's.
    pub cwd: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub struct CodeContext {
    pub id: String,
    pub language: String,
    pub cwd: String,
}

#[derive(Serialize, ToSchema)]
pub struct CodeContexts {
    pub items: Vec<CodeContext>,
}

/// The interpreter's refusal (its `message`), as the status it chose.
async fn refusal(answer: Answer) -> ApiError {
    let status = answer.status;
    let body = small_body(answer.body, SMALL).await.unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    match status {
        StatusCode::NOT_FOUND => ApiError::new(status, "not_found", message),
        StatusCode::BAD_REQUEST => ApiError::bad_request(message),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            format!("the code interpreter answered {status}: {message}"),
        ),
    }
}

async fn audit(st: &Shared, caller: &Caller, id: &str, what: &str, outcome: &str) -> ApiResult<()> {
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxExec,
            target: &format!("{id}:{what}"),
            outcome,
        },
    )
    .await
}

/// Applies one line of the interpreter's output (its secrets already
/// masked) to `run`.
fn apply(run: &mut CodeRun, mut line: Value) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match line["type"].as_str() {
        Some("stdout") => run.stdout.push_str(&text(&line["text"])),
        Some("stderr") => run.stderr.push_str(&text(&line["text"])),
        Some("error") => {
            run.error = Some(CodeError {
                name: text(&line["name"]),
                value: text(&line["value"]),
                traceback: text(&line["traceback"]),
            })
        }
        Some("number_of_executions") => run.execution_count = line["execution_count"].as_u64(),
        Some("result") => {
            if let Some(o) = line.as_object_mut() {
                o.remove("type");
            }
            run.results.push(line);
        }
        _ => {}
    }
}

/// With `Accept: application/x-ndjson` the run is answered as it happens:
/// the interpreter's own lines (`stdout`, `stderr`, `result`, `error`,
/// `number_of_executions`, `keepalive`, `end_of_execution`; `timeout` last
/// if `timeout_secs` passes), secret values masked.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/code", tag = "code",
    request_body = RunCode,
    responses((status = 200, body = CodeRun), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn run(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<RunCode>,
) -> ApiResult<Response> {
    let live = live(&st, &caller, &id).await?;
    let timeout = req.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout) {
        return Err(ApiError::bad_request(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    audit(&st, &caller, live.id.as_str(), "code", "started").await?;
    let body = json!({
        "code": req.code,
        "context_id": req.context_id,
        "language": req.language,
        "env_vars": req.env,
    });
    let answer = call(&st, &live, Method::POST, "/execute", Some(body)).await?;
    if answer.status != StatusCode::OK {
        return Err(refusal(answer).await);
    }
    let streamed = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    if streamed {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        return Ok(super::code_stream::respond(
            answer,
            live.masker.clone(),
            deadline,
        ));
    }
    let tenant = caller.store.tenant_id();
    let mut charge = ExecCharge::new(&st.buffers, tenant, st.cfg.server.exec_output_tenant_bytes);
    let Answer { body, charges, .. } = answer;
    let mut run = CodeRun::default();
    // One line larger than any output a run may keep.
    let mut lines = Lines::new(body, st.cfg.server.exec_output_bytes.max(SMALL) * 8);
    let read = async {
        loop {
            let line = match lines.next().await {
                Ok(Some(Line::Whole(line))) => line,
                Ok(Some(Line::TooLong)) => {
                    run.truncated = true;
                    continue;
                }
                Ok(None) | Err(_) => break,
            };
            if run.truncated {
                continue;
            }
            // Kept output is charged as it arrives; past the tenant's
            // share or the server's total, the rest is dropped.
            if charge.take(&line).1.is_some() {
                run.truncated = true;
                continue;
            }
            if let Ok(mut v) = serde_json::from_slice::<Value>(&line) {
                if let Some(m) = &live.masker {
                    mask_strings(&mut v, m);
                }
                apply(&mut run, v);
            }
        }
    };
    // Past the deadline the connection is dropped, which interrupts the run.
    let timed_out = tokio::time::timeout(Duration::from_secs(timeout), read)
        .await
        .is_err();
    run.timed_out = timed_out;
    drop(charges);
    Ok(Json(run).into_response())
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/code/contexts", tag = "code",
    request_body = NewContext,
    responses((status = 201, body = CodeContext), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_context(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<NewContext>,
) -> ApiResult<(StatusCode, Json<CodeContext>)> {
    let live = live(&st, &caller, &id).await?;
    let body = serde_json::to_value(&req).map_err(|e| ApiError::internal("encoding", e))?;
    let answer = call(&st, &live, Method::POST, "/contexts", Some(body)).await?;
    if answer.status != StatusCode::OK {
        return Err(refusal(answer).await);
    }
    let bytes = small_body(answer.body, SMALL).await?;
    let ctx: CodeContext = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal("reading the code interpreter's context", e))?;
    audit(
        &st,
        &caller,
        live.id.as_str(),
        &format!("code-context {}", ctx.id),
        "created",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ctx)))
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}/code/contexts", tag = "code",
    responses((status = 200, body = CodeContexts), (status = 404, body = ErrorBody)))]
pub async fn list_contexts(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<CodeContexts>> {
    let live = live(&st, &caller, &id).await?;
    let answer = call(&st, &live, Method::GET, "/contexts", None).await?;
    if answer.status != StatusCode::OK {
        return Err(refusal(answer).await);
    }
    let bytes = small_body(answer.body, SMALL).await?;
    let items: Vec<CodeContext> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal("reading the code interpreter's contexts", e))?;
    Ok(Json(CodeContexts { items }))
}

/// Removes (`DELETE /contexts/{ctx}`) or restarts (`POST .../restart`)
/// context `ctx`, audited with `outcome`.
async fn on_context(
    caller: Caller,
    st: Shared,
    (id, ctx): (String, String),
    (method, rest, outcome): (Method, &str, &str),
) -> ApiResult<StatusCode> {
    let live = live(&st, &caller, &id).await?;
    // A context's id becomes a path segment of the interpreter's routes.
    if ctx.is_empty() || !ctx.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::not_found("context"));
    }
    let path = format!("/contexts/{ctx}{rest}");
    let answer = call(&st, &live, method, &path, None).await?;
    if answer.status != StatusCode::NO_CONTENT {
        return Err(refusal(answer).await);
    }
    let target = format!("code-context {ctx}");
    audit(&st, &caller, live.id.as_str(), &target, outcome).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/sandboxes/{id}/code/contexts/{ctx}", tag = "code",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_context(
    caller: Caller,
    State(st): State<Shared>,
    Path(ids): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    on_context(caller, st, ids, (Method::DELETE, "", "removed")).await
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/code/contexts/{ctx}/restart", tag = "code",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn restart_context(
    caller: Caller,
    State(st): State<Shared>,
    Path(ids): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    on_context(caller, st, ids, (Method::POST, "/restart", "restarted")).await
}

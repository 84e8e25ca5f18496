//! A sandbox's processes after they started: list, attach to output,
//! stdin, signals, wait.

use crate::auth::Caller;
use crate::error::init_error;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::exec::{sse, Exit, TtySize};
use crate::service::audit::{Action, Audit};
use crate::service::sandboxes::live;
use crate::state::Shared;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_protocol::{Command, Request};

#[derive(Serialize, ToSchema)]
pub struct ProcessItem {
    pub pid: u32,
    pub command: Vec<String>,
    pub shell: Option<String>,
    pub background: bool,
    pub session: Option<String>,
    pub exit: Option<Exit>,
}

#[derive(Serialize, ToSchema)]
pub struct ProcessList {
    pub items: Vec<ProcessItem>,
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}/processes", tag = "sandboxes",
    responses((status = 200, body = ProcessList), (status = 404, body = ErrorBody)))]
pub async fn processes(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<ProcessList>> {
    let live = live(&st, &caller, &id).await?;
    let list = live.client.list_processes().await.map_err(init_error)?;
    Ok(Json(ProcessList {
        items: list
            .into_iter()
            .map(|p| {
                let (command, shell) = match p.command {
                    Command::Argv(a) => (a, None),
                    Command::Shell(s) => (Vec::new(), Some(s)),
                };
                ProcessItem {
                    pid: p.pid,
                    command,
                    shell,
                    background: p.background,
                    session: p.session,
                    exit: p.exit.map(Into::into),
                }
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}/processes/{pid}/output", tag = "sandboxes",
    responses((status = 200, description = "SSE: what the process printed so far, then as it prints"), (status = 404, body = ErrorBody)))]
pub async fn attach(
    caller: Caller,
    State(st): State<Shared>,
    Path((id, pid)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let live = live(&st, &caller, &id).await?;
    let client = live.client.clone();
    let stream = client
        .stream(Request::Attach { pid, replay: true })
        .map_err(init_error)?;
    Ok(sse(client, stream, None, false, live.masker.clone()).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct StdinParams {
    /// Close stdin after writing the body.
    pub close: Option<bool>,
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/processes/{pid}/stdin", tag = "sandboxes", params(StdinParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn stdin(
    caller: Caller,
    State(st): State<Shared>,
    Path((id, pid)): Path<(String, u32)>,
    Query(p): Query<StdinParams>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let live = live(&st, &caller, &id).await?;
    let close = p.close.unwrap_or(false);
    let fed = async {
        if !body.is_empty() {
            live.client.stdin(pid, &body).await.map_err(init_error)?;
        }
        if close {
            live.client.close_stdin(pid).await.map_err(init_error)?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    // Input changes what runs: audited with its size, never its bytes.
    let closed = if close { ", stdin closed" } else { "" };
    let how = match &fed {
        Ok(()) => "ok",
        Err(e) => e.code,
    };
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxStdin,
            target: &format!("{}:{pid}", live.id),
            outcome: &format!("{how} ({} bytes{closed})", body.len()),
        },
    )
    .await?;
    fed.map(|()| StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct SignalBody {
    /// A name (`TERM`, `SIGKILL`, ...) or a number.
    pub signal: serde_json::Value,
}

fn signal_number(v: &serde_json::Value) -> Option<i32> {
    if let Some(n) = v.as_i64() {
        return (1..=64).contains(&n).then_some(n as i32);
    }
    let name = v.as_str()?.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        _ => return None,
    })
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/processes/{pid}/signal", tag = "sandboxes", request_body = SignalBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn signal(
    caller: Caller,
    State(st): State<Shared>,
    Path((id, pid)): Path<(String, u32)>,
    Json(body): Json<SignalBody>,
) -> ApiResult<StatusCode> {
    let sig = signal_number(&body.signal)
        .ok_or_else(|| ApiError::bad_request(format!("unknown signal {}", body.signal)))?;
    let live = live(&st, &caller, &id).await?;
    live.client.signal(pid, sig).await.map_err(init_error)?;
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxSignal,
            target: &format!("{}:{pid}", live.id),
            outcome: &format!("ok (signal {sig})"),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sandboxes/{id}/processes/{pid}/resize`: a new size for the
/// terminal of a process started with `tty` (its foreground processes get
/// SIGWINCH). A process without a terminal is `400`.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/processes/{pid}/resize", tag = "sandboxes",
    request_body = TtySize,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn resize(
    caller: Caller,
    State(st): State<Shared>,
    Path((id, pid)): Path<(String, u32)>,
    Json(size): Json<TtySize>,
) -> ApiResult<StatusCode> {
    let size = size.checked()?;
    let live = live(&st, &caller, &id).await?;
    live.client.resize(pid, size).await.map_err(init_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/processes/{pid}/wait", tag = "sandboxes",
    responses((status = 200, body = Exit), (status = 404, body = ErrorBody)))]
pub async fn wait(
    caller: Caller,
    State(st): State<Shared>,
    Path((id, pid)): Path<(String, u32)>,
) -> ApiResult<Json<Exit>> {
    let live = live(&st, &caller, &id).await?;
    let status = live.client.wait(pid).await.map_err(init_error)?;
    Ok(Json(status.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(
            signal_number(&serde_json::json!("TERM")),
            Some(libc::SIGTERM)
        );
        assert_eq!(
            signal_number(&serde_json::json!("sigkill")),
            Some(libc::SIGKILL)
        );
        assert_eq!(signal_number(&serde_json::json!(9)), Some(9));
        assert_eq!(signal_number(&serde_json::json!(0)), None);
        assert_eq!(signal_number(&serde_json::json!("NOPE")), None);
    }
}

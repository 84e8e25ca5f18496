//! Files inside a sandbox, through its init: every path is resolved in the
//! sandbox's own view, so a symlink planted there cannot lead outside it.

use crate::auth::Caller;
use crate::error::init_error;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::audit::{Action, Audit};
use crate::service::sandbox_files::{read_stream, write_stream};
use crate::service::sandboxes::live;
use crate::state::Shared;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_protocol::{FileKind, FileStat};

#[derive(Deserialize, IntoParams)]
pub struct PathParams {
    /// Absolute path inside the sandbox.
    pub path: String,
    /// For DELETE: remove a directory and everything in it.
    pub recursive: Option<bool>,
    /// For PUT: permission bits, octal (default 644).
    pub mode: Option<String>,
}

impl PathParams {
    fn checked(&self) -> ApiResult<&str> {
        warden_spec::check_abs_path("path", &self.path)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(&self.path)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Stat {
    /// file | dir | symlink | fifo | socket | char_device | block_device | other
    pub kind: String,
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub link_target: Option<String>,
}

impl From<FileStat> for Stat {
    fn from(s: FileStat) -> Stat {
        let kind = match s.kind {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::CharDevice => "char_device",
            FileKind::BlockDevice => "block_device",
            FileKind::Other => "other",
        };
        Stat {
            kind: kind.into(),
            size: s.size,
            mode: s.mode,
            mtime: s.mtime,
            link_target: s
                .link_target
                .map(|t| String::from_utf8_lossy(&t).into_owned()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Entry {
    pub name: String,
    #[serde(flatten)]
    pub stat: Stat,
}

#[derive(Serialize, ToSchema)]
pub struct EntryList {
    pub items: Vec<Entry>,
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}/files", tag = "sandbox files", params(PathParams),
    responses((status = 200, description = "the file's bytes"), (status = 404, body = ErrorBody)))]
pub async fn read(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<PathParams>,
) -> ApiResult<Response> {
    let live = live(&st, &caller, &id).await?;
    let path = p.checked()?;
    let mut resp = Body::from_stream(read_stream(&live.client, path, false).await?).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

#[utoipa::path(put, path = "/v1/sandboxes/{id}/files", tag = "sandbox files", params(PathParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Stat), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn write(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<PathParams>,
    body: Body,
) -> ApiResult<Json<Stat>> {
    let live = live(&st, &caller, &id).await?;
    let path = p.checked()?.to_string();
    let mode = match &p.mode {
        Some(m) => u32::from_str_radix(m, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| ApiError::bad_request("mode is octal permission bits, e.g. 644"))?,
        None => 0o644,
    };
    let stat = write_stream(
        &live.client,
        &path,
        mode,
        Vec::new(),
        body.into_data_stream(),
    )
    .await?;
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxFileWrite,
            target: &format!("{}:{path}", live.id),
            outcome: "ok",
        },
    )
    .await?;
    Ok(Json(stat.into()))
}

#[utoipa::path(delete, path = "/v1/sandboxes/{id}/files", tag = "sandbox files", params(PathParams),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<PathParams>,
) -> ApiResult<StatusCode> {
    let live = live(&st, &caller, &id).await?;
    let path = p.checked()?;
    live.client
        .remove(path, p.recursive.unwrap_or(false))
        .await
        .map_err(init_error)?;
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxFileRemove,
            target: &format!("{}:{path}", live.id),
            outcome: "ok",
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    operation_id = "list_sandbox_dir",
    get, path = "/v1/sandboxes/{id}/files/list", tag = "sandbox files", params(PathParams),
    responses((status = 200, body = EntryList), (status = 404, body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<PathParams>,
) -> ApiResult<Json<EntryList>> {
    let live = live(&st, &caller, &id).await?;
    let entries = live
        .client
        .list_dir(p.checked()?)
        .await
        .map_err(init_error)?;
    Ok(Json(EntryList {
        items: entries
            .into_iter()
            .map(|e| Entry {
                name: String::from_utf8_lossy(&e.name).into_owned(),
                stat: e.stat.into(),
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}/files/stat", tag = "sandbox files", params(PathParams),
    responses((status = 200, body = Stat), (status = 404, body = ErrorBody)))]
pub async fn stat(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<PathParams>,
) -> ApiResult<Json<Stat>> {
    let live = live(&st, &caller, &id).await?;
    let s = live.client.stat(p.checked()?).await.map_err(init_error)?;
    Ok(Json(s.into()))
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/files/mkdir", tag = "sandbox files", params(PathParams),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn mkdir(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<PathParams>,
) -> ApiResult<StatusCode> {
    let live = live(&st, &caller, &id).await?;
    let path = p.checked()?;
    live.client.mkdir(path, true).await.map_err(init_error)?;
    st.audit(
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxMkdir,
            target: &format!("{}:{path}", live.id),
            outcome: "ok",
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

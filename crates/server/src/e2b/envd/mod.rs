//! envd, the in-sandbox API of E2B (see the module docs of `e2b`): Connect
//! RPC services `process.Process` and `filesystem.Filesystem`, and the
//! plain HTTP `/files` and `/health`, all on the sandbox named by the
//! request and authenticated by its access token (`access`).

pub(crate) mod access;
mod audit;
mod entry;
mod errors;
mod files;
mod filesystem;
mod paths;
pub mod process;
mod process_config;
mod rpc;
mod state;
mod watch;
pub mod watch_budget;

pub use state::{EnvdSandboxes, EnvdState};

use crate::state::Shared;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use rpc::Call;
use serde::Serialize;
use std::sync::Arc;
use warden_envd_wire::connect::{self, Error, Shape};
use warden_envd_wire::prost::Message;

/// The front door's state: the server's, and what envd keeps per sandbox
/// (its own, not the server's: the core knows nothing of E2B).
#[derive(Clone)]
pub struct EnvdApp {
    pub app: Shared,
    pub sandboxes: Arc<EnvdSandboxes>,
}

impl FromRef<EnvdApp> for Shared {
    fn from_ref(s: &EnvdApp) -> Shared {
        s.app.clone()
    }
}

impl FromRef<EnvdApp> for Arc<EnvdSandboxes> {
    fn from_ref(s: &EnvdApp) -> Arc<EnvdSandboxes> {
        s.sandboxes.clone()
    }
}

pub fn routes() -> Router<EnvdApp> {
    let rpc = Router::new()
        .route("/process.Process/{method}", post(process_rpc))
        .route("/filesystem.Filesystem/{method}", post(filesystem_rpc))
        .layer(DefaultBodyLimit::max(connect::MAX_MESSAGE + 5));
    let http = Router::new()
        .route("/health", get(files::health))
        .route("/files", get(files::download).post(files::upload))
        .layer(DefaultBodyLimit::disable());
    rpc.merge(http).fallback(no_such_route)
}

async fn no_such_route(uri: axum::http::Uri) -> Response {
    unknown(format!("{} is not an envd method or route", uri.path()))
}

/// An unknown procedure: `unimplemented`, with the 404 Connect servers
/// answer (the JS SDK judges a failed stream by its HTTP status alone).
fn unknown(message: String) -> Response {
    let mut r = rpc::error_response(&Error::unimplemented(message));
    *r.status_mut() = axum::http::StatusCode::NOT_FOUND;
    r
}

/// Decodes a unary call's request, runs `handler` on it, answers.
async fn unary<Req, Resp, F, Fut>(call: &Call, handler: F) -> Response
where
    Req: Message + Default + serde::de::DeserializeOwned,
    Resp: Message + Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, Error>>,
{
    match call.message(Shape::Unary) {
        Ok(req) => reply(call, handler(req).await),
        Err(e) => rpc::error_response(&e),
    }
}

/// Answers a unary call from its handler's result.
fn reply<T: Message + Serialize>(call: &Call, r: Result<T, Error>) -> Response {
    match r {
        Ok(msg) => call.unary(&msg),
        Err(e) => rpc::error_response(&e),
    }
}

/// A call and the sandbox it may act on, or the refusal to answer.
fn open(
    st: &Shared,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Call, std::sync::Arc<crate::manager::Live>), Box<Response>> {
    let call = Call::parse(headers, body).map_err(|e| Box::new(rpc::error_response(&e)))?;
    match access::sandbox(st, headers) {
        Ok(live) => Ok((call, live)),
        Err(e) => Err(Box::new(rpc::fail(call.shape, call.codec, e))),
    }
}

async fn process_rpc(
    State(st): State<Shared>,
    State(kept): State<Arc<EnvdSandboxes>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use warden_envd_wire::process as p;
    let (call, live) = match open(&st, &headers, body) {
        Ok(opened) => opened,
        Err(refused) => return *refused,
    };
    let envd = kept.of(&live);
    let envd = envd.as_ref();
    match method.as_str() {
        "Start" => process::start(&st, live, envd, &call).await,
        "Connect" => process::connect(live, envd, &call).await,
        "List" => unary(&call, |_: p::ListRequest| process::list(&live, envd)).await,
        "SendInput" => unary(&call, |req| process::send_input(&st, &live, envd, req)).await,
        "SendSignal" => unary(&call, |req| process::send_signal(&live, envd, req)).await,
        "CloseStdin" => {
            unary(&call, |req: p::CloseStdinRequest| async {
                process::close_stdin(&st, &live, envd, req.process).await?;
                Ok(p::CloseStdinResponse {})
            })
            .await
        }
        "Update" => unary(&call, |req| process::update(&live, envd, req)).await,
        "StreamInput" => rpc::error_response(&Error::unimplemented(
            "StreamInput (client streaming) is not supported; use SendInput",
        )),
        other => unknown(format!("process.Process/{other} is not a method")),
    }
}

async fn filesystem_rpc(
    State(st): State<Shared>,
    State(kept): State<Arc<EnvdSandboxes>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use warden_envd_wire::filesystem as f;
    let (call, live) = match open(&st, &headers, body) {
        Ok(opened) => opened,
        Err(refused) => return *refused,
    };
    match method.as_str() {
        "Stat" => {
            unary(&call, |req: f::StatRequest| async move {
                filesystem::stat(&live, &req.path).await
            })
            .await
        }
        "MakeDir" => {
            unary(&call, |req: f::MakeDirRequest| async move {
                filesystem::make_dir(&st, &live, &req.path).await
            })
            .await
        }
        "Move" => unary(&call, |req| filesystem::rename(&st, &live, req)).await,
        "ListDir" => unary(&call, |req| filesystem::list_dir(&live, req)).await,
        "Remove" => {
            unary(&call, |req: f::RemoveRequest| async move {
                filesystem::remove(&st, &live, &req.path).await
            })
            .await
        }
        "WatchDir" => watch::watch_dir(live, &call).await,
        "CreateWatcher" => {
            let envd = kept.of(&live);
            unary(&call, |req| {
                watch::create_watcher(&st, &live, &envd.watchers, req)
            })
            .await
        }
        "GetWatcherEvents" => {
            let r = call
                .message::<f::GetWatcherEventsRequest>(Shape::Unary)
                .and_then(|req| watch::get_events(&kept.of(&live).watchers, &req.watcher_id));
            reply(&call, r)
        }
        "RemoveWatcher" => {
            let r = call
                .message::<f::RemoveWatcherRequest>(Shape::Unary)
                .and_then(|req| watch::remove_watcher(&kept.of(&live).watchers, &req.watcher_id))
                .map(|()| f::RemoveWatcherResponse {});
            reply(&call, r)
        }
        other => unknown(format!("filesystem.Filesystem/{other} is not a method")),
    }
}

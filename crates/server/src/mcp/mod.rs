//! The MCP server: tools an LLM agent can use well — make a sandbox with
//! the tenant's uploads in it, run commands and code, read, write and list
//! its files, submit a review and read its results — over two transports:
//! streamable HTTP at `/mcp` on `warden serve` ([`http_service`]) and stdio
//! for an agent running next to the user (`warden mcp`, [`serve_stdio`]).
//!
//! Both are authenticated by a tenant API key, and every tool is a client
//! of `/v1` (see [`v1`]): what a tool may do, what it costs and what the
//! audit log says about it are what the same `/v1` request gets.
//!
//! The HTTP transport keeps no sessions (`legacy_session_mode` off): each
//! POST carries its own credential and is answered on its own, so an idle
//! or abandoned MCP client holds nothing in the server.

mod content;
mod exec_stream;
mod text;
mod tools_files;
mod tools_review;
mod tools_run;
pub mod v1;

use crate::auth::{bearer, tenant_key};
use crate::error::ApiError;
use crate::state::Shared;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler, ServiceExt};
use std::sync::Arc;
use v1::{InProcess, V1Error, V1};

/// What the tools say about themselves before the first call.
const INSTRUCTIONS: &str = "Warden runs code in isolated Linux sandboxes. \
Typical use: list_uploaded_files to find the user's files, create_sandbox with their ids \
(they appear read-only under /input/<name>), then run_command / run_code / read_file / \
write_file / list_directory on it, and destroy_sandbox when done. Writable places: /scratch \
(the working directory), /tmp and /output. For a one-shot batch job over files, \
submit_review runs a command to its end and keeps what it leaves in /output; \
get_review waits for it and read_review_output reads its results.";

/// How the tools reach `/v1`.
#[derive(Clone)]
enum Backend {
    /// `warden mcp`: one credential for the whole process.
    Fixed(Arc<dyn V1>),
    /// `/mcp`: the server's router, with each request's own credential.
    InProcess(axum::Router),
}

/// The MCP server handler: the tools and how they reach `/v1`.
#[derive(Clone)]
pub struct Warden {
    backend: Backend,
    tools: Arc<ToolRouter<Warden>>,
}

impl Warden {
    fn with(backend: Backend) -> Warden {
        Warden {
            backend,
            tools: Arc::new(Self::tool_set()),
        }
    }

    fn tool_set() -> ToolRouter<Warden> {
        Self::run_tools() + Self::file_tools() + Self::review_tools()
    }

    /// `/v1` as the caller of this tool call.
    fn v1(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<dyn V1>, ErrorData> {
        match &self.backend {
            Backend::Fixed(v) => Ok(v.clone()),
            Backend::InProcess(app) => {
                // The HTTP transport puts the request's head in the context;
                // the middleware in front of it has checked its key.
                let auth = ctx
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|p| p.headers.get(header::AUTHORIZATION))
                    .cloned()
                    .ok_or_else(|| {
                        ErrorData::invalid_request("no Authorization header on this request", None)
                    })?;
                Ok(Arc::new(InProcess {
                    app: app.clone(),
                    auth,
                }))
            }
        }
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for Warden {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("warden", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// A tool's outcome: refusals and failures of the API are the tool's
/// result (the model reads them and can correct itself), not protocol
/// errors.
type Outcome = Result<CallToolResult, V1Error>;

fn finish(outcome: Outcome) -> Result<CallToolResult, ErrorData> {
    Ok(outcome.unwrap_or_else(|e| CallToolResult::error(vec![ContentBlock::text(e.to_string())])))
}

/// `/mcp`: streamable HTTP over the server's own router `app` (which must
/// not itself hold `/mcp`), behind a check of the tenant API key.
pub fn http_service(state: Shared, app: axum::Router) -> axum::Router<Shared> {
    let tools = Arc::new(Warden::tool_set());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // Requests are authenticated by a bearer key a rebinding page
        // cannot present, and the server answers under whatever name
        // the operator publishes it.
        .disable_allowed_hosts();
    let max_body = state.cfg.max_json_bytes;
    let service: StreamableHttpService<Warden, LocalSessionManager> = StreamableHttpService::new(
        move || {
            Ok(Warden {
                backend: Backend::InProcess(app.clone()),
                tools: tools.clone(),
            })
        },
        Default::default(),
        config,
    );
    axum::Router::new()
        .route_service("/mcp", service)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// A request without a valid tenant API key is refused before the MCP
/// transport reads it.
async fn authenticate(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let checked = match bearer(&parts) {
        Ok(token) => tenant_key(&st, token).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => unauthorized(e),
    }
}

fn unauthorized(e: ApiError) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// `warden mcp`: the tools on stdin/stdout, reaching `/v1` through `v1`,
/// until the client closes stdin.
pub async fn serve_stdio(v1: Arc<dyn V1>) -> anyhow::Result<()> {
    let server = Warden::with(Backend::Fixed(v1))
        .serve(rmcp::transport::stdio())
        .await?;
    server.waiting().await?;
    Ok(())
}

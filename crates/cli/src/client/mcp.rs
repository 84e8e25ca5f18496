//! `warden mcp`: Warden's MCP tools on stdin/stdout, for an agent running
//! next to the user (Claude Desktop, an IDE, an agent framework). The
//! tools are the server's own (`warden_server::mcp`); here they reach the
//! server's `/v1` over HTTP with the tenant API key, so what they may do
//! and what the audit log says is what the server decides.

use super::http::Api;
use super::{Server, TenantAuth};
use anyhow::Result;
use clap::Args;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::sync::Arc;
use warden_server::mcp::v1::{Call, Opened, V1Error, V1};

#[derive(Args, Debug)]
pub struct McpArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
}

pub async fn run(a: McpArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    warden_server::mcp::serve_stdio(Arc::new(Remote { api })).await?;
    Ok(0)
}

/// `/v1` over HTTP.
struct Remote {
    api: Api,
}

impl V1 for Remote {
    fn open(&self, call: Call) -> BoxFuture<'_, Result<Opened, V1Error>> {
        Box::pin(async move {
            let transport = |e: anyhow::Error| V1Error::Transport(format!("{e:#}"));
            let mut rb = self
                .api
                .request_encoded(call.method, &call.path)
                .map_err(transport)?;
            if let Some(accept) = call.accept {
                rb = rb.header(reqwest::header::ACCEPT, accept);
            }
            if let Some((ct, body)) = call.body {
                rb = rb.header(reqwest::header::CONTENT_TYPE, ct).body(body);
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| transport(self.api.transport(e)))?;
            let status = resp.status();
            let api = self.api.clone();
            let body = resp
                .bytes_stream()
                .map(move |r| r.map_err(|e| transport(api.transport(e))))
                .boxed();
            Ok(Opened { status, body })
        })
    }
}

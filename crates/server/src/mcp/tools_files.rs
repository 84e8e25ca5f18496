//! Files: the user's uploads, and the files inside a sandbox.

use super::content::{of_file, READ_MAX};
use super::tools_run::pretty;
use super::v1::{json, seg, Call, V1Error};
use super::{finish, Warden};
use axum::http::Method;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{schemars, tool, tool_router, ErrorData, RoleServer};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most entries a directory listing shows.
const LIST_MAX: usize = 500;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PathArgs {
    /// The sandbox, from create_sandbox.
    pub sandbox_id: String,
    /// Absolute path inside the sandbox, e.g. /scratch/report.md.
    pub path: String,
}

#[derive(Deserialize, schemars::JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The content is the text itself.
    #[default]
    Utf8,
    /// The content is base64 of the bytes.
    Base64,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// The sandbox, from create_sandbox.
    pub sandbox_id: String,
    /// Absolute path inside the sandbox under a writable place (/scratch,
    /// /tmp, /output). Missing parent directories are made.
    pub path: String,
    /// The file's whole new content.
    pub content: String,
    /// `utf8` (default) or `base64`.
    #[serde(default)]
    pub encoding: Encoding,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadArgs {
    /// The file's name (no slashes), as it will appear under /input/.
    pub name: String,
    /// The file's content.
    pub content: String,
    /// `utf8` (default) or `base64`.
    #[serde(default)]
    pub encoding: Encoding,
}

fn decode(content: String, enc: Encoding) -> Result<Bytes, V1Error> {
    match enc {
        Encoding::Utf8 => Ok(Bytes::from(content)),
        Encoding::Base64 => B64
            .decode(content.trim())
            .map(Bytes::from)
            .map_err(|e| V1Error::Api {
                status: 400,
                code: "invalid_request".into(),
                message: format!("content is not valid base64: {e}"),
            }),
    }
}

fn file_path(sandbox: &str, what: &str, path: &str) -> String {
    format!(
        "/v1/sandboxes/{}/files{what}?path={}",
        seg(sandbox),
        seg(path)
    )
}

#[tool_router(router = file_tools, vis = "pub(super)")]
impl Warden {
    #[tool(
        description = "List the files the user has uploaded (newest first): their ids (for \
create_sandbox and submit_review), names, sizes and types.",
        annotations(
            title = "List uploaded files",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_uploaded_files(
        &self,
        Parameters(_): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let page = json(&*v1, Call::get("/v1/files?limit=200".into()), 4 << 20).await?;
                let items: Vec<Value> = page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| json!({ "file_id": f["id"], "name": f["name"], "size": f["size"],
                                     "content_type": f["content_type"], "created_at": f["created_at"] }))
                    .collect();
                Ok(CallToolResult::success(vec![ContentBlock::text(pretty(&Value::from(items)))]))
            }
            .await,
        )
    }

    #[tool(
        description = "Upload a file for the user (checked as any upload), to pass to create_sandbox \
or submit_review by its returned file_id. For files made inside a sandbox, use write_file instead.",
        annotations(
            title = "Upload a file",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn upload_file(
        &self,
        Parameters(a): Parameters<UploadArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let body = decode(a.content, a.encoding)?;
                let call = Call::new(Method::POST, format!("/v1/files?name={}", seg(&a.name)))
                    .with_body("application/octet-stream", body);
                let f = json(&*v1, call, 1 << 20).await?;
                let answer = json!({ "file_id": f["id"], "name": f["name"], "size": f["size"],
                                     "content_type": f["content_type"] });
                Ok(CallToolResult::success(vec![ContentBlock::text(pretty(
                    &answer,
                ))]))
            }
            .await,
        )
    }

    #[tool(
        description = "Read a file in a sandbox. Text is returned (up to 64 KiB: the start and end of \
longer files), PNG/JPEG/GIF/WebP images as images; other binary files are described, not shown.",
        annotations(title = "Read a file", read_only_hint = true, open_world_hint = false)
    )]
    async fn read_file(
        &self,
        Parameters(a): Parameters<PathArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let st = json(
                    &*v1,
                    Call::get(file_path(&a.sandbox_id, "/stat", &a.path)),
                    1 << 20,
                )
                .await?;
                if st["kind"] != "file" {
                    return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "{} is a {}, not a file{}",
                        a.path,
                        st["kind"].as_str().unwrap_or("?"),
                        if st["kind"] == "dir" {
                            ": use list_directory"
                        } else {
                            ""
                        }
                    ))]));
                }
                let r = v1
                    .send(Call::get(file_path(&a.sandbox_id, "", &a.path)), READ_MAX)
                    .await?
                    .ok()?;
                let size = st["size"].as_u64().unwrap_or(r.body.len() as u64);
                Ok(CallToolResult::success(of_file(
                    &a.path, size, &r.body, r.cut,
                )))
            }
            .await,
        )
    }

    #[tool(
        description = "Write a file in a sandbox (replacing it if it exists), e.g. a script to run \
or data to process.",
        annotations(
            title = "Write a file",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn write_file(
        &self,
        Parameters(a): Parameters<WriteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let body = decode(a.content, a.encoding)?;
                let put = || {
                    Call::new(Method::PUT, file_path(&a.sandbox_id, "", &a.path))
                        .with_body("application/octet-stream", body.clone())
                };
                let mut r = v1.send(put(), 1 << 20).await?;
                if r.status == axum::http::StatusCode::NOT_FOUND {
                    // A missing parent directory: made, then written again.
                    // (A missing sandbox fails the mkdir with its own 404.)
                    if let Some((parent, _)) =
                        a.path.rsplit_once('/').filter(|(p, _)| !p.is_empty())
                    {
                        let mkdir =
                            Call::new(Method::POST, file_path(&a.sandbox_id, "/mkdir", parent));
                        v1.send(mkdir, 1 << 20).await?.ok()?;
                        r = v1.send(put(), 1 << 20).await?;
                    }
                }
                let st = r.ok()?.json()?;
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "wrote {} bytes to {}",
                    st["size"], a.path
                ))]))
            }
            .await,
        )
    }

    #[tool(
        description = "List a directory in a sandbox: each entry's name, kind (file, dir, symlink) and size.",
        annotations(
            title = "List a directory",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_directory(
        &self,
        Parameters(a): Parameters<PathArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let list = json(
                    &*v1,
                    Call::get(file_path(&a.sandbox_id, "/list", &a.path)),
                    8 << 20,
                )
                .await?;
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let mut text = format!("{} ({} entries)\n", a.path, items.len());
                for e in items.iter().take(LIST_MAX) {
                    let kind = e["kind"].as_str().unwrap_or("?");
                    let name = e["name"].as_str().unwrap_or("?");
                    match kind {
                        "file" => text.push_str(&format!("{name}  file  {} bytes\n", e["size"])),
                        "symlink" => text.push_str(&format!(
                            "{name}  symlink -> {}\n",
                            e["link_target"].as_str().unwrap_or("?")
                        )),
                        _ => text.push_str(&format!("{name}  {kind}\n")),
                    }
                }
                if items.len() > LIST_MAX {
                    text.push_str(&format!(
                        "[{} more not shown; use run_command with ls or find to filter]\n",
                        items.len() - LIST_MAX
                    ));
                }
                Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
            }
            .await,
        )
    }
}

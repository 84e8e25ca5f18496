//! Sandboxes and what runs in them: create, run a command, run code in a
//! stateful interpreter, list, destroy.

use super::exec_stream::{self, Ended};
use super::text::bounded;
use super::v1::{json, seg, Call};
use super::{finish, Warden};
use axum::http::Method;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{schemars, tool, tool_router, ErrorData, RoleServer};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The most of each of a command's output streams a tool shows.
const STREAM_MAX: usize = 16 << 10;
/// A command's default time limit, in seconds.
const COMMAND_TIMEOUT: f64 = 120.0;
/// What a code run's JSON answer may take (the server caps its output
/// with the exec buffers' budgets).
const CODE_ANSWER_MAX: usize = 8 << 20;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Ids of the user's uploaded files (from list_uploaded_files) to put
    /// in the sandbox, read-only at /input/<file name>.
    #[serde(default)]
    pub file_ids: Vec<String>,
    /// The image: `host` (default: the host's programs) or `python-data`
    /// (Python with pandas, numpy, matplotlib, openpyxl; needed by run_code).
    pub image: Option<String>,
    /// Seconds until the sandbox is destroyed by itself (default 300).
    pub timeout_secs: Option<u64>,
    /// `native` (default) or `gvisor` (a user-space kernel in between:
    /// slower to start, a smaller attack surface).
    pub isolation: Option<String>,
    /// Host names the sandbox may reach over HTTPS/HTTP (e.g. `pypi.org`,
    /// `*.github.com`). Default: no network at all.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Environment variables for every command in it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Let programs write anywhere (e.g. `pip install`), on a layer of the
    /// sandbox's own; default false: only /scratch, /tmp and /output.
    #[serde(default)]
    pub writable_root: bool,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandArgs {
    /// The sandbox, from create_sandbox.
    pub sandbox_id: String,
    /// A shell command line, run with /bin/sh -c.
    pub command: String,
    /// Working directory (default /scratch).
    pub cwd: Option<String>,
    /// Kill the command after this many seconds (default 120, at most 86400).
    pub timeout_secs: Option<f64>,
    /// Text written to the command's standard input.
    pub stdin: Option<String>,
    /// Extra environment variables for this command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeArgs {
    /// The sandbox, from create_sandbox with image `python-data`.
    pub sandbox_id: String,
    /// Python code. Variables, imports and definitions persist between
    /// calls in the same context; the value of the last line is returned,
    /// and matplotlib figures come back as images.
    pub code: String,
    /// A context from an earlier answer, to run in a separate namespace;
    /// default: the sandbox's default context.
    pub context_id: Option<String>,
    /// Interrupt the run after this many seconds (default 300).
    pub timeout_secs: Option<u64>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxArgs {
    /// The sandbox, from create_sandbox.
    pub sandbox_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only sandboxes in this state: `running` (default), `paused`,
    /// `stopped`, `timed_out`, `failed` or `all`.
    pub state: Option<String>,
}

#[tool_router(router = run_tools, vis = "pub(super)")]
impl Warden {
    #[tool(
        description = "Create an isolated Linux sandbox, optionally with the user's uploaded files in it \
(read-only under /input/<name>). Returns its sandbox_id for the other tools. Commands run as an \
unprivileged user in /scratch; there is no network unless allow_hosts names hosts. Destroy it with \
destroy_sandbox when done (it also ends by itself after timeout_secs).",
        annotations(
            title = "Create a sandbox",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_sandbox(
        &self,
        Parameters(a): Parameters<CreateArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let mut body =
                    json!({ "files": a.file_ids, "env": a.env, "writable_root": a.writable_root });
                for (k, v) in [
                    ("image", a.image.map(Value::from)),
                    ("timeout_secs", a.timeout_secs.map(Value::from)),
                    ("isolation", a.isolation.map(Value::from)),
                ] {
                    if let Some(v) = v {
                        body[k] = v;
                    }
                }
                if !a.allow_hosts.is_empty() {
                    let rules: Vec<Value> =
                        a.allow_hosts.iter().map(|h| json!({ "host": h })).collect();
                    body["network"] = json!({ "mode": "allowlist", "rules": rules });
                }
                let sb = json(
                    &*v1,
                    Call::json(Method::POST, "/v1/sandboxes".into(), &body),
                    1 << 20,
                )
                .await?;
                let mut inputs = Vec::new();
                for id in sb["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    let f =
                        json(&*v1, Call::get(format!("/v1/files/{}", seg(id))), 1 << 20).await?;
                    if let Some(name) = f["name"].as_str() {
                        inputs.push(format!("/input/{name}"));
                    }
                }
                let answer = json!({
                    "sandbox_id": sb["id"],
                    "image": sb["image"],
                    "isolation": sb["isolation"],
                    "expires_at": sb["expires_at"],
                    "inputs": inputs,
                    "network": sb["network"],
                });
                Ok(CallToolResult::success(vec![ContentBlock::text(pretty(
                    &answer,
                ))]))
            }
            .await,
        )
    }

    #[tool(
        description = "Run a shell command in a sandbox and wait for it to end. Returns the exit code \
and its output (each stream shown up to 16 KiB: the start and the end of longer output). The \
command is killed after timeout_secs (default 120). Each call starts in cwd (default /scratch) \
with a fresh shell: use files, not shell variables, to carry state between calls.",
        annotations(
            title = "Run a command",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn run_command(
        &self,
        Parameters(a): Parameters<CommandArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let mut body = json!({
                    "shell": a.command,
                    "env": a.env,
                    "timeout_secs": a.timeout_secs.unwrap_or(COMMAND_TIMEOUT),
                });
                if let Some(cwd) = a.cwd {
                    body["cwd"] = cwd.into();
                }
                if let Some(stdin) = a.stdin {
                    body["stdin"] = stdin.into();
                }
                let path = format!("/v1/sandboxes/{}/exec", seg(&a.sandbox_id));
                let ended = exec_stream::run(&*v1, path, &body, STREAM_MAX).await?;
                Ok(command_result(&ended))
            }
            .await,
        )
    }

    #[tool(
        description = "Run Python code in a stateful interpreter (Jupyter-like) in a sandbox created \
with image python-data. Variables persist between calls. Returns printed output, the value of the \
last expression, figures as images, and the error with its traceback if the code raised.",
        annotations(
            title = "Run Python code",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn run_code(
        &self,
        Parameters(a): Parameters<CodeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let mut body = json!({ "code": a.code });
                if let Some(c) = a.context_id {
                    body["context_id"] = c.into();
                }
                if let Some(t) = a.timeout_secs {
                    body["timeout_secs"] = t.into();
                }
                let path = format!("/v1/sandboxes/{}/code", seg(&a.sandbox_id));
                let r = json(&*v1, Call::json(Method::POST, path, &body), CODE_ANSWER_MAX).await?;
                Ok(code_result(&r))
            }
            .await,
        )
    }

    #[tool(
        description = "List the user's sandboxes (running ones by default) with their ids, images and expiry.",
        annotations(
            title = "List sandboxes",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_sandboxes(
        &self,
        Parameters(a): Parameters<ListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let state = a.state.unwrap_or_else(|| "running".into());
                let path = if state == "all" {
                    "/v1/sandboxes?limit=100".to_string()
                } else {
                    format!("/v1/sandboxes?limit=100&state={}", seg(&state))
                };
                let page = json(&*v1, Call::get(path), 4 << 20).await?;
                let items: Vec<Value> = page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        json!({ "sandbox_id": s["id"], "state": s["state"], "image": s["image"],
                                "isolation": s["isolation"], "created_at": s["created_at"],
                                "expires_at": s["expires_at"], "labels": s["labels"] })
                    })
                    .collect();
                Ok(CallToolResult::success(vec![ContentBlock::text(pretty(
                    &Value::from(items),
                ))]))
            }
            .await,
        )
    }

    #[tool(
        description = "Destroy a sandbox: its processes end and its files are gone.",
        annotations(
            title = "Destroy a sandbox",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn destroy_sandbox(
        &self,
        Parameters(a): Parameters<SandboxArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let path = format!("/v1/sandboxes/{}", seg(&a.sandbox_id));
                let call = Call::new(Method::DELETE, path);
                v1.send(call, 1 << 20).await?.ok()?;
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "sandbox {} destroyed",
                    a.sandbox_id
                ))]))
            }
            .await,
        )
    }
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// How a command ended, as the model reads it. A command that failed is
/// still a tool success (its exit code is the answer); an exec that broke
/// (the sandbox ended under it) is a tool error.
fn command_result(e: &Ended) -> CallToolResult {
    let x = e.exit.clone().unwrap_or(Value::Null);
    let mut text = match (x["exit_code"].as_i64(), x["signal"].as_i64()) {
        _ if x["timed_out"].as_bool() == Some(true) => "timed out and was killed".to_string(),
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "ended without an exit status".to_string(),
    };
    for (name, kept) in [("stdout", &e.stdout), ("stderr", &e.stderr)] {
        if !kept.is_empty() {
            text.push_str(&format!("\n--- {name} ---\n{}", kept.render()));
        }
    }
    match &e.error {
        Some((code, message)) => {
            text.push_str(&format!("\n[{code}: {message}]"));
            CallToolResult::error(vec![ContentBlock::text(text)])
        }
        None => CallToolResult::success(vec![ContentBlock::text(text)]),
    }
}

/// A code run's answer: printed output, results (images as images), the
/// error. A run whose code raised is a tool error, so the model notices.
fn code_result(r: &Value) -> CallToolResult {
    let mut blocks = Vec::new();
    for key in ["stdout", "stderr"] {
        if let Some(s) = r[key].as_str().filter(|s| !s.is_empty()) {
            blocks.push(ContentBlock::text(format!(
                "[{key}]\n{}",
                bounded(s, STREAM_MAX)
            )));
        }
    }
    for res in r["results"].as_array().into_iter().flatten() {
        blocks.extend(result_blocks(res));
    }
    let error = &r["error"];
    if r["timed_out"].as_bool() == Some(true) {
        blocks.push(ContentBlock::text(
            "[the run passed its timeout and was interrupted]",
        ));
    }
    if error.is_object() {
        blocks.push(ContentBlock::text(format!(
            "[error] {}: {}\n{}",
            error["name"].as_str().unwrap_or_default(),
            error["value"].as_str().unwrap_or_default(),
            bounded(error["traceback"].as_str().unwrap_or_default(), STREAM_MAX)
        )));
        return CallToolResult::error(blocks);
    }
    if blocks.is_empty() {
        blocks.push(ContentBlock::text("[no output]"));
    }
    CallToolResult::success(blocks)
}

fn result_blocks(res: &Value) -> Vec<ContentBlock> {
    let o: &Map<String, Value> = match res.as_object() {
        Some(o) => o,
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    for (key, mime) in [("png", "image/png"), ("jpeg", "image/jpeg")] {
        if let Some(b64) = o.get(key).and_then(Value::as_str) {
            out.push(ContentBlock::image(b64.to_string(), mime));
        }
    }
    let label = if o.get("is_main_result").and_then(Value::as_bool) == Some(true) {
        "[result]"
    } else {
        "[display]"
    };
    // A plain-text form says it best to a model; markdown and HTML (a
    // DataFrame's table) when there is none.
    let text = ["text", "markdown", "html", "json"].iter().find_map(|k| {
        o.get(*k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
    });
    if let Some(t) = text {
        if !(out.len() == 1 && t.starts_with("<Figure")) {
            out.push(ContentBlock::text(format!(
                "{label} {}",
                bounded(&t, STREAM_MAX)
            )));
        }
    }
    out
}

//! Review jobs: a command run to its end over the user's files in a
//! sandbox of its own, what it leaves in `/output` kept as its results.

use super::content::{of_file, READ_MAX};
use super::text::bounded;
use super::tools_run::pretty;
use super::v1::{json, seg, Call, V1Error, V1};
use super::{finish, Warden};
use axum::http::Method;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{schemars, tool, tool_router, ErrorData, RoleServer};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The longest a get_review call waits for a job to end.
const WAIT_MAX_SECS: u64 = 300;
/// How often a waiting get_review looks again.
const POLL: Duration = Duration::from_millis(250);
/// The end of the log shown with a job.
const LOG_TAIL: usize = 8 << 10;
/// Most of the log read to find its end.
const LOG_READ_MAX: usize = 4 << 20;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitArgs {
    /// Ids of the user's uploaded files, read-only at /input/<name>.
    #[serde(default)]
    pub file_ids: Vec<String>,
    /// A shell command line (/bin/sh -c). Whatever it writes under /output
    /// becomes the job's results.
    pub command: String,
    /// `host` (default) or `python-data`.
    pub image: Option<String>,
    /// Kill the command after this many seconds (default 3600).
    pub timeout_secs: Option<u64>,
    /// Host names the job may reach (default: no network).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The job, from submit_review.
    pub review_id: String,
    /// Wait up to this many seconds for the job to end (0 to 300, default 0:
    /// answer at once).
    #[serde(default)]
    pub wait_secs: u64,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputArgs {
    /// The job, from submit_review.
    pub review_id: String,
    /// An output's path as get_review lists it, e.g. report.md.
    pub path: String,
}

fn ended(status: &str) -> bool {
    !matches!(status, "pending" | "running")
}

#[tool_router(router = review_tools, vis = "pub(super)")]
impl Warden {
    #[tool(
        description = "Submit a review job: a command run to its end in a fresh sandbox over the \
user's files (at /input/<name>); what it writes under /output is kept as its results. Returns a \
review_id at once; use get_review to wait for it.",
        annotations(
            title = "Submit a review job",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn submit_review(
        &self,
        Parameters(a): Parameters<SubmitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let mut body = json!({ "files": a.file_ids, "shell": a.command });
                if let Some(i) = a.image {
                    body["image"] = i.into();
                }
                if let Some(t) = a.timeout_secs {
                    body["timeout_secs"] = t.into();
                }
                if !a.allow_hosts.is_empty() {
                    let rules: Vec<Value> =
                        a.allow_hosts.iter().map(|h| json!({ "host": h })).collect();
                    body["network"] = json!({ "mode": "allowlist", "rules": rules });
                }
                let r = json(
                    &*v1,
                    Call::json(Method::POST, "/v1/reviews".into(), &body),
                    1 << 20,
                )
                .await?;
                let answer = json!({ "review_id": r["id"], "status": r["status"] });
                Ok(CallToolResult::success(vec![ContentBlock::text(pretty(
                    &answer,
                ))]))
            }
            .await,
        )
    }

    #[tool(
        description = "A review job's state; with wait_secs, waits for it to end first. An ended job \
comes with its exit code, the end of its log and the list of its results (read them with \
read_review_output).",
        annotations(
            title = "Get a review job",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_review(
        &self,
        Parameters(a): Parameters<GetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let path = format!("/v1/reviews/{}", seg(&a.review_id));
                let deadline = Instant::now() + Duration::from_secs(a.wait_secs.min(WAIT_MAX_SECS));
                let r = loop {
                    let r = json(&*v1, Call::get(path.clone()), 4 << 20).await?;
                    if ended(r["status"].as_str().unwrap_or_default()) || Instant::now() >= deadline
                    {
                        break r;
                    }
                    tokio::time::sleep(POLL).await;
                };
                let status = r["status"].as_str().unwrap_or_default();
                let mut answer = json!({ "review_id": r["id"], "status": status });
                if ended(status) {
                    let outputs: Vec<Value> = r["outputs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|o| json!({ "path": o["path"], "size": o["size"] }))
                        .collect();
                    answer["exit_code"] = r["exit_code"].clone();
                    answer["error"] = r["error"].clone();
                    answer["outputs"] = outputs.into();
                    answer["outputs_truncated"] = r["outputs_truncated"].clone();
                    answer["log_tail"] = log_tail(&*v1, &a.review_id).await?.into();
                }
                Ok(CallToolResult::success(vec![ContentBlock::text(pretty(
                    &answer,
                ))]))
            }
            .await,
        )
    }

    #[tool(
        description = "Read one of an ended review job's results (a file it left in /output): text up \
to 64 KiB (start and end of longer ones), images as images.",
        annotations(
            title = "Read a review result",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn read_review_output(
        &self,
        Parameters(a): Parameters<OutputArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let v1 = self.v1(&ctx)?;
        finish(
            async {
                let want = a.path.trim_start_matches('/');
                let list = format!("/v1/reviews/{}/outputs", seg(&a.review_id));
                let list = json(&*v1, Call::get(list), 4 << 20).await?;
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let Some(size) = items
                    .iter()
                    .find(|o| o["path"] == want)
                    .map(|o| o["size"].as_u64().unwrap_or(0))
                else {
                    let paths: Vec<&str> =
                        items.iter().filter_map(|o| o["path"].as_str()).collect();
                    return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "review {} has no output {want:?}; its outputs: {}",
                        a.review_id,
                        if paths.is_empty() {
                            "none".to_string()
                        } else {
                            paths.join(", ")
                        }
                    ))]));
                };
                let segs: Vec<String> = want.split('/').map(seg).collect();
                let path = format!(
                    "/v1/reviews/{}/outputs/{}",
                    seg(&a.review_id),
                    segs.join("/")
                );
                let r = v1.send(Call::get(path), READ_MAX).await?.ok()?;
                Ok(CallToolResult::success(of_file(want, size, &r.body, r.cut)))
            }
            .await,
        )
    }
}

/// The end of a job's log (what the command printed, Warden's notes as
/// `[warden]` lines).
async fn log_tail(v1: &dyn V1, id: &str) -> Result<String, V1Error> {
    let r = v1
        .send(
            Call::get(format!("/v1/reviews/{}/logs", seg(id))),
            LOG_READ_MAX,
        )
        .await?;
    if !r.status.is_success() {
        // A job whose log was deleted still has a state to report.
        return Ok(String::new());
    }
    let text = String::from_utf8_lossy(&r.body);
    let tail = if text.len() > LOG_TAIL {
        let mut i = text.len() - LOG_TAIL;
        while !text.is_char_boundary(i) {
            i += 1;
        }
        format!("[...]{}", &text[i..])
    } else {
        text.into_owned()
    };
    Ok(bounded(&tail, LOG_TAIL + 16))
}

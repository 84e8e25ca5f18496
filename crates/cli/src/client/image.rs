//! `warden image …`: the images a tenant may start sandboxes from, and
//! building its own from a recipe file:
//!
//! ```toml
//! base = "python-data"
//! [[steps]]
//! apt = ["jq"]
//! [[steps]]
//! pip = ["tabulate==0.9.0"]
//! [[steps]]
//! file = { src = "tools/report.py", path = "/opt/tools/report.py", mode = 0o755 }
//! [[steps]]
//! run = "python3 -m compileall -q /opt/tools"
//! ```
//!
//! A `file` step's `src` (relative to the recipe) is uploaded first and
//! named by its id; the build's progress is printed as it comes.

use super::http::Api;
use super::output::{self, field, Table};
use super::{Server, TenantAuth};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build (or rebuild) image NAME from a recipe file; steps built
    /// before are reused.
    Build {
        name: String,
        /// The recipe (TOML: `base` and `[[steps]]`, see `warden image
        /// build --help`).
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Print only the step lines, not the steps' output.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// List the images (the operator's, then yours).
    List,
    /// Show one image: its digest, steps, layers and packages.
    Show { name: String },
    /// Delete one of your images (sandboxes on it keep running).
    Rm { name: String },
}

/// The recipe as the API takes it: each `file` step's `src` uploaded.
async fn request(api: &Api, name: &str, recipe: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(recipe)
        .with_context(|| format!("cannot read {}", recipe.display()))?;
    let doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", recipe.display()))?;
    let base = doc
        .get("base")
        .and_then(|b| b.as_str())
        .context("the recipe needs `base = \"IMAGE\"`")?;
    let here = recipe.parent().unwrap_or(Path::new("."));
    let mut steps = Vec::new();
    let Some(list) = doc.get("steps").and_then(|s| s.as_array()) else {
        bail!("the recipe needs [[steps]]");
    };
    for (i, s) in list.iter().enumerate() {
        let mut step = serde_json::to_value(s)?;
        if let Some(f) = step.get_mut("file").and_then(Value::as_object_mut) {
            let src = f
                .remove("src")
                .and_then(|v| v.as_str().map(str::to_string))
                .with_context(|| format!("step {}: a file step needs `src`", i + 1))?;
            let uploaded = super::transfer::upload(api, &here.join(&src), None, true).await?;
            f.insert("file_id".into(), json!(field(&uploaded, "id")));
        }
        steps.push(step);
    }
    Ok(json!({ "name": name, "base": base, "steps": steps }))
}

async fn build(api: &Api, name: &str, recipe: &Path, quiet: bool, as_json: bool) -> Result<i32> {
    let body = request(api, name, recipe).await?;
    let rb = api.request(Method::POST, &["v1", "images"])?.json(&body);
    let resp = api.send(rb).await?;
    let mut lines = resp.bytes_stream();
    let mut pending = Vec::new();
    let mut code = 1;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while let Some(chunk) = lines.next().await {
        pending.extend_from_slice(&chunk.map_err(|e| api.transport(e))?);
        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            let e: Value = serde_json::from_slice(&line).context("a build event is not JSON")?;
            if as_json {
                out.write_all(&line)?;
                continue;
            }
            match field(&e, "event").as_str() {
                "step" => writeln!(
                    err,
                    "step {}/{}{}: {}",
                    field(&e, "index"),
                    field(&e, "of"),
                    if e["cached"] == json!(true) {
                        " (cached)"
                    } else {
                        ""
                    },
                    field(&e, "summary")
                )?,
                "output" if !quiet => err.write_all(field(&e, "data").as_bytes())?,
                "output" => {}
                "done" => {
                    code = 0;
                    writeln!(
                        out,
                        "built {} ({} of its steps run, {} ms), content sha256 {}",
                        field(&e["image"], "name"),
                        field(&e, "steps_run"),
                        field(&e, "elapsed_ms"),
                        field(&e["image"], "content_sha256"),
                    )?;
                }
                "error" => writeln!(
                    err,
                    "error: {} ({})",
                    field(&e, "message"),
                    field(&e, "code")
                )?,
                _ => {}
            }
        }
    }
    Ok(code)
}

pub async fn run(a: ImageArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let as_json = a.server.json;
    let v = match a.command {
        ImageCommand::Build { name, file, quiet } => {
            return build(&api, &name, &file, quiet, as_json).await
        }
        ImageCommand::List => {
            let v = api.get(&["v1", "images"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["NAME", "OWNER", "BASE", "LAYERS", "SHA256", "BUILT"]);
            for v in output::items(&v)? {
                let digest = field(v, "content_sha256");
                t.row(vec![
                    field(v, "name"),
                    field(v, "owner"),
                    v.get("base").and_then(Value::as_str).unwrap_or("-").into(),
                    v.get("layers")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                        .to_string(),
                    digest.chars().take(12).collect(),
                    field(v, "built_at"),
                ]);
            }
            t.print()?;
            return Ok(0);
        }
        ImageCommand::Show { name } => api.get(&["v1", "images", &name], &[]).await?,
        ImageCommand::Rm { name } => {
            api.delete(&["v1", "images", &name], &[]).await?;
            output::out(&format!("deleted {name}\n"))?;
            return Ok(0);
        }
    };
    output::json(&v).map(|_| 0)
}

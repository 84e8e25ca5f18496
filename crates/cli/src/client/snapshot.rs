//! `warden snapshot …`: the tenant's snapshots, a sandbox's files kept to
//! start new sandboxes from (`warden sandbox create --snapshot NAME`).

use super::http::Api;
use super::output::{self, field, Table};
use super::{Server, TenantAuth};
use anyhow::Result;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Take a snapshot of a live sandbox's files (it keeps running).
    Create {
        /// The sandbox's id.
        sandbox: String,
        /// 1-63 of [A-Za-z0-9._-], unique among the tenant's snapshots.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the snapshots, newest first.
    List,
    /// Show one snapshot (by id or name).
    Show { snapshot: String },
    /// Delete a snapshot (sandboxes made from it keep their files).
    Rm { snapshot: String },
}

fn line(v: &Value) -> String {
    format!(
        "{}\t{}\t{}\t{} files\t{} bytes\tfrom {}\n",
        field(v, "id"),
        v.get("name").and_then(Value::as_str).unwrap_or("-"),
        field(v, "state"),
        field(v, "files"),
        field(v, "bytes"),
        field(v, "source_sandbox"),
    )
}

pub async fn run(a: SnapshotArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let as_json = a.server.json;
    let v = match a.command {
        SnapshotCommand::Create { sandbox, name } => {
            let body = match name {
                Some(n) => json!({ "name": n }),
                None => json!({}),
            };
            let rb = api
                .request(Method::POST, &["v1", "sandboxes", &sandbox, "snapshots"])?
                .json(&body);
            api.json(rb).await?
        }
        SnapshotCommand::List => {
            let v = api.get(&["v1", "snapshots"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&[
                "ID", "NAME", "STATE", "FILES", "BYTES", "IMAGE", "FROM", "CREATED",
            ]);
            for v in output::items(&v)? {
                t.row(vec![
                    field(v, "id"),
                    v.get("name").and_then(Value::as_str).unwrap_or("-").into(),
                    field(v, "state"),
                    field(v, "files"),
                    field(v, "bytes"),
                    field(v, "image"),
                    field(v, "source_sandbox"),
                    field(v, "created_at"),
                ]);
            }
            t.print()?;
            return Ok(0);
        }
        SnapshotCommand::Show { snapshot } => api.get(&["v1", "snapshots", &snapshot], &[]).await?,
        SnapshotCommand::Rm { snapshot } => {
            let v = api.delete(&["v1", "snapshots", &snapshot], &[]).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {snapshot}\n"))?;
            }
            return Ok(0);
        }
    };
    if as_json {
        return output::json(&v).map(|_| 0);
    }
    output::out(&line(&v))?;
    Ok(0)
}

//! `warden file …`: the tenant's stored files (tenant key). Uploads and
//! downloads live in `transfer.rs`.

use super::http::Api;
use super::output::{self, bytes_field, field, Table};
use super::{parse, transfer, Page, Server, TenantAuth};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct FileArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: FileCommand,
}

#[derive(Subcommand, Debug)]
pub enum FileCommand {
    /// Upload a file; prints its id.
    Upload {
        /// The file to upload.
        path: PathBuf,
        /// The name to store it under (default: the path's file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List files.
    List {
        #[command(flatten)]
        page: Page,
    },
    /// Show one file's metadata.
    Get { id: String },
    /// Download a file's bytes (to stdout without -o).
    Download {
        id: String,
        /// Where to write it; a directory receives it under its stored name.
        #[arg(short = 'o', long = "output", value_name = "PATH")]
        output: Option<PathBuf>,
    },
    /// Delete a file.
    Delete { id: String },
    /// Make a one-time upload URL (PUT the bytes there, no key needed).
    UploadUrl {
        /// The name the uploaded file gets.
        name: String,
        /// How long the URL stays valid, 1s to 24h (server default 15m).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
}

pub async fn run(a: FileArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let as_json = a.server.json;
    match a.command {
        FileCommand::Upload { path, name } => {
            let f = transfer::upload(&api, &path, name.as_deref(), as_json).await?;
            if as_json {
                output::json(&f)?;
            } else {
                output::out(&format!("{}\n", field(&f, "id")))?;
            }
        }
        FileCommand::List { page } => {
            let v = api.get(&["v1", "files"], &page.query()).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["ID", "NAME", "SIZE", "TYPE", "CREATED"]);
            for f in output::items(&v)? {
                t.row(vec![
                    field(f, "id"),
                    field(f, "name"),
                    bytes_field(f, "size"),
                    field(f, "content_type"),
                    field(f, "created_at"),
                ]);
            }
            t.print()?;
            output::next_page_hint(&v, "--cursor");
        }
        FileCommand::Get { id } => {
            let f = api.get(&["v1", "files", &id], &[]).await?;
            if as_json {
                return output::json(&f).map(|_| 0);
            }
            output::fields(&[
                ("id", field(&f, "id")),
                ("name", field(&f, "name")),
                ("size", size_line(&f)),
                ("type", field(&f, "content_type")),
                ("sha256", field(&f, "sha256")),
                ("created", field(&f, "created_at")),
            ])?;
        }
        FileCommand::Download { id, output } => {
            let done = transfer::download(&api, &id, output.as_deref(), as_json).await?;
            if as_json {
                output::json(&done)?;
            }
        }
        FileCommand::Delete { id } => {
            let v = api.delete(&["v1", "files", &id], &[]).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {id}\n"))?;
            }
        }
        FileCommand::UploadUrl { name, expires } => {
            let mut body = json!({ "name": name });
            if let Some(e) = expires {
                body["expires_in_secs"] = parse::duration_secs("--expires", &e)?.into();
            }
            let u = api.post(&["v1", "files", "upload-url"], &body).await?;
            if as_json {
                return output::json(&u).map(|_| 0);
            }
            output::out(&format!("{}\n", field(&u, "url")))?;
            super::note(&format!(
                "{} the bytes to this URL (no key needed) before {}; it works once",
                field(&u, "method"),
                field(&u, "expires_at"),
            ));
        }
    }
    Ok(0)
}

/// `1.5M (1572864 bytes)`.
fn size_line(f: &Value) -> String {
    match f.get("size").and_then(Value::as_u64) {
        Some(n) => format!("{} ({n} bytes)", output::human_bytes(n)),
        None => field(f, "size"),
    }
}

//! `warden key …`: a tenant's API keys (admin token).

use super::http::Api;
use super::output::{self, field, Table};
use super::{note, AdminAuth, Server};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: AdminAuth,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key; prints the key, which is shown only this once.
    Create {
        /// The tenant the key belongs to.
        #[arg(long, value_name = "ID")]
        tenant: String,
        /// A name to tell the key apart by.
        #[arg(long)]
        name: Option<String>,
    },
    /// List a tenant's keys (never the keys themselves).
    List {
        #[arg(long, value_name = "ID")]
        tenant: String,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long, value_name = "ID")]
        tenant: String,
        /// The key's id (`key_…`), not the key.
        key_id: String,
    },
}

pub async fn run(a: KeyArgs) -> Result<i32> {
    let api = Api::admin(&a.server, &a.auth)?;
    let as_json = a.server.json;
    match a.command {
        KeyCommand::Create { tenant, name } => {
            let body = match name {
                Some(n) => json!({ "name": n }),
                None => json!({}),
            };
            let k = api.post(&["v1", "tenants", &tenant, "keys"], &body).await?;
            if as_json {
                return output::json(&k).map(|_| 0);
            }
            let key = k
                .get("key")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| anyhow::anyhow!("the server's answer holds no \"key\""))?;
            output::out(&format!("{key}\n"))?;
            note(&format!(
                "this key ({}) is shown only once: store it now",
                field(&k, "id")
            ));
            if let Some(e2b) = k.get("e2b_key").and_then(Value::as_str) {
                note(&format!(
                    "for E2B SDKs that check the key's format (E2B_API_KEY): {e2b}"
                ));
            }
        }
        KeyCommand::List { tenant } => {
            let v = api.get(&["v1", "tenants", &tenant, "keys"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["ID", "NAME", "CREATED", "REVOKED"]);
            for k in output::items(&v)? {
                t.row(vec![
                    field(k, "id"),
                    field(k, "name"),
                    field(k, "created_at"),
                    field(k, "revoked_at"),
                ]);
            }
            t.print()?;
        }
        KeyCommand::Revoke { tenant, key_id } => {
            let v = api
                .delete(&["v1", "tenants", &tenant, "keys", &key_id], &[])
                .await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("revoked {key_id}\n"))?;
            }
        }
    }
    Ok(0)
}

//! `warden tenant …`: tenants and their quotas (admin token).

use super::http::Api;
use super::output::{self, bytes_field, field, Table};
use super::{parse, AdminAuth, Page, Server};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct TenantArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: AdminAuth,
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant; prints its id.
    Create {
        /// The tenant's name.
        name: String,
        /// Most sandboxes running at once.
        #[arg(long, value_name = "N")]
        max_sandboxes: Option<u64>,
        /// Most memory of all running sandboxes together, e.g. 8G.
        #[arg(long, value_name = "SIZE")]
        max_memory: Option<String>,
        /// Most bytes of all stored files together, e.g. 10G.
        #[arg(long, value_name = "SIZE")]
        max_storage: Option<String>,
        /// Largest single file, e.g. 100M.
        #[arg(long, value_name = "SIZE")]
        max_file: Option<String>,
        /// Most CPUs of all running sandboxes and jobs together (the sum
        /// of their `cpus`, rounded up).
        #[arg(long, value_name = "N")]
        max_cpus: Option<u32>,
        /// Most processes of all running sandboxes and jobs together (the
        /// sum of their `pids` limits).
        #[arg(long, value_name = "N")]
        max_pids: Option<u64>,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        page: Page,
    },
    /// Show one tenant and its quotas.
    Get { id: String },
    /// Disable a tenant: its keys answer 403 until it is enabled again.
    Disable { id: String },
    /// Enable a disabled tenant.
    Enable { id: String },
    /// Delete a tenant with its keys, files and objects.
    Delete {
        id: String,
        /// Stop its running sandboxes first (else a tenant with running
        /// sandboxes is refused).
        #[arg(long)]
        force: bool,
    },
    /// Show a tenant's command policy, or replace it (`--deny`, `--allow`,
    /// `--hook`, `--file`, `--clear`).
    CommandPolicy(super::command_policy::CommandPolicyArgs),
}

/// The limits `tenant create` takes, as given on the command line.
#[derive(Default)]
pub struct QuotaFlags<'a> {
    pub max_sandboxes: Option<u64>,
    pub max_memory: Option<&'a str>,
    pub max_storage: Option<&'a str>,
    pub max_file: Option<&'a str>,
    pub max_cpus: Option<u32>,
    pub max_pids: Option<u64>,
}

/// The `quotas` object of a create request: only the limits given.
pub fn quotas(f: QuotaFlags<'_>) -> Result<Option<Value>> {
    let QuotaFlags {
        max_sandboxes,
        max_memory,
        max_storage,
        max_file,
        max_cpus,
        max_pids,
    } = f;
    let mut q = Map::new();
    if let Some(n) = max_sandboxes {
        q.insert("max_sandboxes".into(), n.into());
    }
    if let Some(n) = max_cpus {
        q.insert("max_cpus".into(), n.into());
    }
    if let Some(n) = max_pids {
        q.insert("max_pids".into(), n.into());
    }
    for (flag, key, value) in [
        ("--max-memory", "max_memory_bytes", max_memory),
        ("--max-storage", "max_storage_bytes", max_storage),
        ("--max-file", "max_file_bytes", max_file),
    ] {
        if let Some(s) = value {
            q.insert(key.into(), parse::size_bytes(flag, s)?.into());
        }
    }
    Ok((!q.is_empty()).then_some(Value::Object(q)))
}

pub async fn run(a: TenantArgs) -> Result<i32> {
    let api = Api::admin(&a.server, &a.auth)?;
    let as_json = a.server.json;
    match a.command {
        TenantCommand::Create {
            name,
            max_sandboxes,
            max_memory,
            max_storage,
            max_file,
            max_cpus,
            max_pids,
        } => {
            let mut body = json!({ "name": name });
            if let Some(q) = quotas(QuotaFlags {
                max_sandboxes,
                max_memory: max_memory.as_deref(),
                max_storage: max_storage.as_deref(),
                max_file: max_file.as_deref(),
                max_cpus,
                max_pids,
            })? {
                body["quotas"] = q;
            }
            let t = api.post(&["v1", "tenants"], &body).await?;
            if as_json {
                output::json(&t)?;
            } else {
                output::out(&format!("{}\n", field(&t, "id")))?;
            }
        }
        TenantCommand::List { page } => {
            let v = api.get(&["v1", "tenants"], &page.query()).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&[
                "ID",
                "NAME",
                "DISABLED",
                "CREATED",
                "SANDBOXES",
                "MEMORY",
                "STORAGE",
                "FILE",
                "CPUS",
                "PIDS",
            ]);
            for item in output::items(&v)? {
                let q = item.get("quotas").unwrap_or(&Value::Null);
                t.row(vec![
                    field(item, "id"),
                    field(item, "name"),
                    field(item, "disabled"),
                    field(item, "created_at"),
                    field(q, "max_sandboxes"),
                    bytes_field(q, "max_memory_bytes"),
                    bytes_field(q, "max_storage_bytes"),
                    bytes_field(q, "max_file_bytes"),
                    field(q, "max_cpus"),
                    field(q, "max_pids"),
                ]);
            }
            t.print()?;
            output::next_page_hint(&v, "--cursor");
        }
        TenantCommand::Get { id } => {
            let t = api.get(&["v1", "tenants", &id], &[]).await?;
            show(&t, as_json)?;
        }
        TenantCommand::Disable { id } => {
            let t = api.post_empty(&["v1", "tenants", &id, "disable"]).await?;
            show(&t, as_json)?;
        }
        TenantCommand::Enable { id } => {
            let t = api.post_empty(&["v1", "tenants", &id, "enable"]).await?;
            show(&t, as_json)?;
        }
        TenantCommand::Delete { id, force } => {
            let query = if force {
                vec![("force", "true".to_string())]
            } else {
                vec![]
            };
            let v = api.delete(&["v1", "tenants", &id], &query).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {id}\n"))?;
            }
        }
        TenantCommand::CommandPolicy(p) => {
            super::command_policy::run(&api, p, as_json).await?;
        }
    }
    Ok(0)
}

/// One tenant, as JSON or as `field: value` lines.
fn show(t: &Value, as_json: bool) -> Result<()> {
    if as_json {
        return output::json(t);
    }
    let q = t.get("quotas").unwrap_or(&Value::Null);
    output::fields(&[
        ("id", field(t, "id")),
        ("name", field(t, "name")),
        ("disabled", field(t, "disabled")),
        ("created", field(t, "created_at")),
        ("max sandboxes", field(q, "max_sandboxes")),
        ("max memory", bytes_field(q, "max_memory_bytes")),
        ("max storage", bytes_field(q, "max_storage_bytes")),
        ("max file", bytes_field(q, "max_file_bytes")),
        ("max cpus", field(q, "max_cpus")),
        ("max pids", field(q, "max_pids")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_carry_only_what_was_given() {
        assert_eq!(quotas(QuotaFlags::default()).unwrap(), None);
        assert_eq!(
            quotas(QuotaFlags {
                max_sandboxes: Some(5),
                max_memory: Some("8G"),
                max_file: Some("100M"),
                max_cpus: Some(4),
                max_pids: Some(2048),
                ..QuotaFlags::default()
            })
            .unwrap(),
            Some(json!({
                "max_sandboxes": 5,
                "max_memory_bytes": 8u64 << 30,
                "max_file_bytes": 100u64 << 20,
                "max_cpus": 4,
                "max_pids": 2048,
            }))
        );
        let e = quotas(QuotaFlags {
            max_storage: Some("lots"),
            ..QuotaFlags::default()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("--max-storage"), "{e}");
    }
}

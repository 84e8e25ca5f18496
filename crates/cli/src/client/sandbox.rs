//! `warden sandbox …`: create, list, inspect, extend and destroy sandboxes
//! (tenant key).

use super::http::Api;
use super::output::{self, field, pairs, Table};
use super::{parse, Page, Server, TenantAuth};
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct SandboxArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: SandboxCommand,
}

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Create a sandbox; prints its id.
    Create(Box<CreateArgs>),
    /// List sandboxes.
    List {
        /// Only sandboxes in this state.
        #[arg(long, value_parser = ["running", "paused", "stopped", "timed_out", "lost", "failed"])]
        state: Option<String>,
        /// Only sandboxes with this label (repeatable; all must match).
        #[arg(long = "label", value_name = "K=V")]
        labels: Vec<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Show one sandbox.
    Get { id: String },
    /// Destroy a sandbox.
    Delete { id: String },
    /// Set a sandbox to expire DURATION from now (e.g. 10m).
    Timeout { id: String, duration: String },
    /// Pause a sandbox: its processes end, its files are kept, its memory,
    /// CPU and slot are freed until it resumes. With `--mode full` (gVisor
    /// sandboxes) its processes and memory are kept too.
    Pause {
        id: String,
        #[arg(long, value_parser = ["filesystem", "full"], default_value = "filesystem")]
        mode: String,
    },
    /// Resume a paused sandbox (same id, its files back), to expire
    /// --timeout from now (default: the lifetime it was created with).
    Resume {
        id: String,
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Fork a running sandbox: a new one with its files as they are now,
    /// its image, limits, environment and volumes (the source keeps
    /// running); prints the new id.
    Fork {
        id: String,
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Replace the egress allowlist of a running sandbox (created with
    /// --allow-host); no --allow-host refuses every connection.
    Network {
        id: String,
        /// A host it may reach (repeatable; `*.suffix`, `HOST:PORT[,PORT]`).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_host: Vec<String>,
    },
    /// Show every connection attempt the sandbox made, allowed or not.
    Egress { id: String },
}

#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// `host` (the server's /usr, read-only) or an image the server knows
    /// (server default: host).
    #[arg(long)]
    pub image: Option<String>,
    /// Isolation tier: native or gvisor (server default: native).
    #[arg(long, value_name = "TIER")]
    pub isolation: Option<String>,
    /// Lifetime before the sandbox is destroyed, e.g. 5m (server default 5m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Memory limit, e.g. 512M (sent in whole MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU share, e.g. 0.5.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Most processes at once.
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Size of the writable areas, e.g. 256M (sent in whole MiB).
    #[arg(long, value_name = "SIZE")]
    pub disk: Option<String>,
    /// Environment variable for every command (repeatable).
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// A stored file to show read-only at /input/<name> (repeatable).
    #[arg(long = "file", value_name = "FILE_ID")]
    pub files: Vec<String>,
    /// A secret of the tenant to set as an environment variable of that
    /// name (repeatable; see `warden secret`).
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
    /// A label (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Working directory inside the sandbox (server default /scratch).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Let the sandbox reach HOST through its egress proxy (repeatable;
    /// `*.suffix` and `HOST:PORT[,PORT]` work; ports 443 and 80 by
    /// default). Without it the sandbox has no network.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// Mount one of the tenant's volumes at PATH, read-write or (`:ro`)
    /// read-only (repeatable; see `warden volume`).
    #[arg(long = "volume", value_name = "NAME:/PATH[:ro]")]
    pub volumes: Vec<String>,
    /// Start from one of the tenant's snapshots (by id or name): its files,
    /// image, user and writable root (see `warden snapshot`).
    #[arg(long, value_name = "SNAPSHOT")]
    pub snapshot: Option<String>,
}

/// The `CreateSandbox` body: only what was given, so the server's defaults
/// apply to the rest.
pub fn create_body(a: &CreateArgs) -> Result<Value> {
    let mut body = Map::new();
    if let Some(i) = &a.image {
        body.insert("image".into(), i.clone().into());
    }
    if let Some(i) = &a.isolation {
        body.insert("isolation".into(), i.clone().into());
    }
    if let Some(t) = &a.timeout {
        body.insert(
            "timeout_secs".into(),
            parse::duration_secs("--timeout", t)?.into(),
        );
    }
    if !a.env.is_empty() {
        body.insert("env".into(), json!(parse::env(&a.env)?));
    }
    if !a.files.is_empty() {
        body.insert("files".into(), json!(a.files));
    }
    if !a.secrets.is_empty() {
        body.insert("secrets".into(), json!(a.secrets));
    }
    if !a.labels.is_empty() {
        body.insert("labels".into(), json!(parse::labels(&a.labels)?));
    }
    if let Some(limits) = parse::limits(a.memory.as_deref(), a.cpus, a.pids, a.disk.as_deref())? {
        body.insert("limits".into(), limits);
    }
    if let Some(w) = &a.workdir {
        body.insert("workdir".into(), w.clone().into());
    }
    if let Some(n) = super::egress::allowlist_body(&a.allow_host)? {
        body.insert("network".into(), n);
    }
    if !a.volumes.is_empty() {
        let mounts: Result<Vec<Value>> = a
            .volumes
            .iter()
            .map(|v| super::volume::mount_body(v))
            .collect();
        body.insert("volumes".into(), Value::Array(mounts?));
    }
    if let Some(s) = &a.snapshot {
        body.insert("snapshot".into(), s.clone().into());
    }
    Ok(Value::Object(body))
}

pub async fn run(a: SandboxArgs) -> Result<i32> {
    let as_json = a.server.json;
    // Check the flags before needing a key or a server.
    let create = match &a.command {
        SandboxCommand::Create(c) => Some(create_body(c)?),
        _ => None,
    };
    let api = Api::tenant(&a.server, &a.auth)?;
    match a.command {
        SandboxCommand::Create(_) => {
            let body = create.unwrap_or_default();
            let s = api.post(&["v1", "sandboxes"], &body).await?;
            if as_json {
                output::json(&s)?;
            } else {
                output::out(&format!("{}\n", field(&s, "id")))?;
            }
        }
        SandboxCommand::List {
            state,
            labels,
            page,
        } => {
            let mut query = Vec::new();
            if let Some(s) = state {
                query.push(("state", s));
            }
            for l in parse::label_filters(&labels)? {
                query.push(("label", l));
            }
            query.extend(page.query());
            let v = api.get(&["v1", "sandboxes"], &query).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["ID", "STATE", "IMAGE", "CREATED", "EXPIRES", "LABELS"]);
            for s in output::items(&v)? {
                t.row(vec![
                    field(s, "id"),
                    field(s, "state"),
                    field(s, "image"),
                    field(s, "created_at"),
                    field(s, "expires_at"),
                    pairs(s, "labels"),
                ]);
            }
            t.print()?;
            output::next_page_hint(&v, "--cursor");
        }
        SandboxCommand::Get { id } => {
            let s = api.get(&["v1", "sandboxes", &id], &[]).await?;
            show(&s, as_json)?;
        }
        SandboxCommand::Delete { id } => {
            let v = api.delete(&["v1", "sandboxes", &id], &[]).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {id}\n"))?;
            }
        }
        SandboxCommand::Timeout { id, duration } => {
            let secs = parse::duration_secs("DURATION", &duration)?;
            let s = api
                .post(
                    &["v1", "sandboxes", &id, "timeout"],
                    &json!({ "timeout_secs": secs }),
                )
                .await?;
            if as_json {
                output::json(&s)?;
            } else {
                output::out(&format!("{} expires at {}\n", id, field(&s, "expires_at")))?;
            }
        }
        SandboxCommand::Pause { id, mode } => {
            let s = api
                .post(&["v1", "sandboxes", &id, "pause"], &json!({ "mode": mode }))
                .await?;
            if as_json {
                output::json(&s)?;
            } else {
                output::out(&format!("{id} {}\n", field(&s, "state")))?;
            }
        }
        SandboxCommand::Resume { id, timeout } => {
            let mut body = json!({});
            if let Some(t) = timeout {
                body["timeout_secs"] = parse::duration_secs("--timeout", &t)?.into();
            }
            let s = api.post(&["v1", "sandboxes", &id, "resume"], &body).await?;
            if as_json {
                output::json(&s)?;
            } else {
                output::out(&format!(
                    "{id} {} until {}\n",
                    field(&s, "state"),
                    field(&s, "expires_at")
                ))?;
            }
        }
        SandboxCommand::Fork { id, timeout } => {
            let mut body = json!({});
            if let Some(t) = timeout {
                body["timeout_secs"] = parse::duration_secs("--timeout", &t)?.into();
            }
            let s = api.post(&["v1", "sandboxes", &id, "fork"], &body).await?;
            if as_json {
                output::json(&s)?;
            } else {
                output::out(&format!("{}\n", field(&s, "id")))?;
            }
        }
        SandboxCommand::Network { id, allow_host } => {
            super::egress::set_rules(&api, &id, &allow_host, as_json).await?;
        }
        SandboxCommand::Egress { id } => {
            super::egress::print_log(&api, &["v1", "sandboxes", &id, "egress"], as_json).await?;
        }
    }
    Ok(0)
}

/// One sandbox, as JSON or as `field: value` lines.
fn show(s: &Value, as_json: bool) -> Result<()> {
    if as_json {
        return output::json(s);
    }
    let mut end = field(s, "end_reason");
    if end == "-" {
        end = field(s, "ended_at");
    } else if s.get("ended_at").is_some_and(|v| !v.is_null()) {
        end = format!("{} ({end})", field(s, "ended_at"));
    }
    output::fields(&[
        ("id", field(s, "id")),
        ("state", field(s, "state")),
        ("image", field(s, "image")),
        ("isolation", field(s, "isolation")),
        ("labels", pairs(s, "labels")),
        ("limits", field(s, "limits")),
        ("network", field(s, "network")),
        ("created", field(s, "created_at")),
        ("expires", field(s, "expires_at")),
        ("ended", end),
        ("usage", field(s, "usage")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_create_leaves_everything_to_the_server() {
        assert_eq!(create_body(&CreateArgs::default()).unwrap(), json!({}));
    }

    #[test]
    fn create_carries_every_flag() {
        let a = CreateArgs {
            image: Some("host".into()),
            isolation: Some("gvisor".into()),
            timeout: Some("5m".into()),
            memory: Some("512M".into()),
            cpus: Some(1.5),
            pids: Some(64),
            disk: Some("1G".into()),
            env: vec!["A=1".into(), "B=x=y".into()],
            files: vec!["file_1".into(), "file_2".into()],
            secrets: vec!["API_KEY".into(), "DB_URL".into()],
            labels: vec!["team=ml".into()],
            workdir: Some("/scratch/w".into()),
            allow_host: vec!["pypi.org".into()],
            volumes: vec!["data:/data".into(), "ref:/ref:ro".into()],
            snapshot: Some("base".into()),
        };
        assert_eq!(
            create_body(&a).unwrap(),
            json!({
                "image": "host",
                "isolation": "gvisor",
                "timeout_secs": 300,
                "network": {"mode": "allowlist", "rules": [{"host": "pypi.org"}]},
                "env": {"A": "1", "B": "x=y"},
                "files": ["file_1", "file_2"],
                "secrets": ["API_KEY", "DB_URL"],
                "labels": {"team": "ml"},
                "limits": {"memory_mb": 512, "cpus": 1.5, "pids": 64, "disk_mb": 1024},
                "workdir": "/scratch/w",
                "volumes": [
                    {"volume": "data", "path": "/data", "read_only": false},
                    {"volume": "ref", "path": "/ref", "read_only": true},
                ],
                "snapshot": "base",
            })
        );
    }

    #[test]
    fn bad_create_flags_are_refused() {
        for a in [
            CreateArgs {
                memory: Some("lots".into()),
                ..Default::default()
            },
            CreateArgs {
                cpus: Some(0.0),
                ..Default::default()
            },
            CreateArgs {
                env: vec!["NOEQUALS".into()],
                ..Default::default()
            },
            CreateArgs {
                labels: vec!["=v".into()],
                ..Default::default()
            },
            CreateArgs {
                timeout: Some("0s".into()),
                ..Default::default()
            },
        ] {
            assert!(create_body(&a).is_err(), "{a:?}");
        }
    }
}

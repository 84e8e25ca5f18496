//! `warden volume …`: the tenant's volumes, named persistent file systems
//! that sandboxes mount (`warden sandbox create --volume NAME:/PATH`).

use super::http::Api;
use super::output::{self, field, Table};
use super::{parse, Server, TenantAuth};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume (its size is taken from the server's disk now and
    /// counts in the tenant's storage quota until it is deleted).
    Create {
        /// 1-63 of [A-Za-z0-9._-], unique among the tenant's volumes.
        name: String,
        /// Its size, e.g. 512M or 2G (server default 1G; at least 16M).
        #[arg(long, value_name = "SIZE")]
        size: Option<String>,
    },
    /// List the volumes.
    List,
    /// Show one volume (by id or name).
    Show { volume: String },
    /// Delete a volume and everything in it (refused while a sandbox has
    /// it mounted).
    Rm { volume: String },
}

/// `--volume NAME:/PATH[:ro|:rw]` as a `VolumeMount`.
pub fn mount_body(s: &str) -> Result<Value> {
    let mut parts = s.splitn(3, ':');
    let (Some(volume), Some(path)) = (parts.next(), parts.next()) else {
        bail!("--volume {s:?}: expected NAME:/PATH[:ro]");
    };
    let read_only = match parts.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => bail!("--volume {s:?}: mode {m:?} is not ro or rw"),
    };
    if volume.is_empty() || !path.starts_with('/') {
        bail!("--volume {s:?}: expected NAME:/PATH[:ro] with an absolute path");
    }
    Ok(json!({ "volume": volume, "path": path, "read_only": read_only }))
}

fn used(v: &Value) -> String {
    match v.get("used_bytes").and_then(Value::as_u64) {
        Some(b) => b.to_string(),
        None => "-".into(),
    }
}

pub async fn run(a: VolumeArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let as_json = a.server.json;
    let v = match a.command {
        VolumeCommand::Create { name, size } => {
            let mut body = json!({ "name": name });
            if let Some(s) = size {
                body["size_bytes"] = parse::size_bytes("--size", &s)?.into();
            }
            let rb = api.request(Method::POST, &["v1", "volumes"])?.json(&body);
            api.json(rb).await?
        }
        VolumeCommand::List => {
            let v = api.get(&["v1", "volumes"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["ID", "NAME", "SIZE", "USED", "IN USE", "CREATED"]);
            for v in output::items(&v)? {
                t.row(vec![
                    field(v, "id"),
                    field(v, "name"),
                    field(v, "size_bytes"),
                    used(v),
                    field(v, "in_use"),
                    field(v, "created_at"),
                ]);
            }
            t.print()?;
            return Ok(0);
        }
        VolumeCommand::Show { volume } => api.get(&["v1", "volumes", &volume], &[]).await?,
        VolumeCommand::Rm { volume } => {
            let v = api.delete(&["v1", "volumes", &volume], &[]).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {volume}\n"))?;
            }
            return Ok(0);
        }
    };
    if as_json {
        return output::json(&v).map(|_| 0);
    }
    output::out(&format!(
        "{}\t{}\tsize {}\tused {}\tin use {}\n",
        field(&v, "id"),
        field(&v, "name"),
        field(&v, "size_bytes"),
        used(&v),
        field(&v, "in_use"),
    ))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_are_parsed() {
        assert_eq!(
            mount_body("data:/data").unwrap(),
            json!({"volume": "data", "path": "/data", "read_only": false})
        );
        assert_eq!(mount_body("d:/x/y:ro").unwrap()["read_only"], true);
        for bad in ["data", ":/data", "data:rel", "d:/x:rx"] {
            assert!(mount_body(bad).is_err(), "{bad} accepted");
        }
    }
}

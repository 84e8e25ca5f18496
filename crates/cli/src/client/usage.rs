//! `warden usage`: what the tenant's sandboxes used (tenant key).

use super::http::Api;
use super::output::{self, bytes_field, field};
use super::{Server, TenantAuth};
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct UsageArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    /// Start of the window, RFC 3339 (e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    from: Option<String>,
    /// End of the window, RFC 3339.
    #[arg(long, value_name = "RFC3339")]
    to: Option<String>,
}

pub async fn run(a: UsageArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let mut query = Vec::new();
    if let Some(f) = a.from {
        query.push(("from", f));
    }
    if let Some(t) = a.to {
        query.push(("to", t));
    }
    let v = api.get(&["v1", "usage"], &query).await?;
    if a.server.json {
        return output::json(&v).map(|_| 0);
    }
    output::fields(&[
        ("sandboxes", field(&v, "sandboxes")),
        ("cpu seconds", field(&v, "cpu_seconds")),
        ("wall seconds", field(&v, "wall_seconds")),
        ("max peak memory", bytes_field(&v, "max_peak_memory_bytes")),
    ])?;
    Ok(0)
}

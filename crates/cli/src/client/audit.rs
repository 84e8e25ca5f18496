//! `warden audit list`: the tenant's audit log (tenant key).

use super::http::Api;
use super::output::{self, field, Table};
use super::{Server, TenantAuth};
use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// List audit entries, oldest first.
    List {
        /// Only entries after this sequence number.
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// Most entries in one answer (1–1000; the server's default is 100).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Re-check every tenant's audit chain in a server's data directory
    /// (operator; reads the database directly, no server needed).
    Verify(crate::serve::VerifyArgs),
}

pub async fn run(a: AuditArgs) -> Result<i32> {
    if let AuditCommand::Verify(v) = &a.command {
        return crate::serve::verify(v).await;
    }
    let api = Api::tenant(&a.server, &a.auth)?;
    match a.command {
        AuditCommand::Verify(_) => {}
        AuditCommand::List { after, limit } => {
            let mut query = Vec::new();
            if let Some(s) = after {
                query.push(("after", s.to_string()));
            }
            if let Some(l) = limit {
                query.push(("limit", l.to_string()));
            }
            let v = api.get(&["v1", "audit"], &query).await?;
            if a.server.json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"]);
            for e in output::items(&v)? {
                t.row(vec![
                    field(e, "seq"),
                    field(e, "at"),
                    field(e, "actor"),
                    field(e, "action"),
                    field(e, "target"),
                    field(e, "outcome"),
                ]);
            }
            t.print()?;
            output::next_page_hint(&v, "--after");
        }
    }
    Ok(0)
}

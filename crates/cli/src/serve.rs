//! `warden serve` and `warden audit verify`: the server and its operator's
//! check of the audit chains.

use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file (see README); the environment and these
    /// flags override it.
    #[arg(long, env = "WARDEN_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:7300).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Database and object store (default ./warden-data; WARDEN_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn main(args: ServeArgs) -> i32 {
    let run = || -> Result<()> {
        let mut cfg = warden_server::config::Config::load(args.config.as_deref())?;
        if let Some(l) = args.listen {
            cfg.listen = l;
        }
        if let Some(d) = args.data_dir {
            cfg.data_dir = d;
        }
        let init = crate::runtime::init_path()?;
        runtime()?.block_on(warden_server::serve(
            cfg,
            init,
            |addr, cfg| {
                eprintln!("warden: configuration\n{cfg}");
                eprintln!("warden: listening on http://{addr}");
            },
            warden_server::wait_for_signal(),
        ))
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("warden: {e:#}");
            125
        }
    }
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The server's data directory (default ./warden-data; WARDEN_DATA_DIR).
    #[arg(long, env = "WARDEN_DATA_DIR", default_value = "./warden-data")]
    data_dir: PathBuf,
    /// The audit key file (default <data dir>/audit.key;
    /// WARDEN_AUDIT_KEY_FILE).
    #[arg(long, env = "WARDEN_AUDIT_KEY_FILE")]
    audit_key: Option<PathBuf>,
}

/// Re-checks every tenant's audit chain against the audit key and the
/// chain's anchor: 0 when all verify, 1 when one is broken (which entry,
/// and why, on stdout). Chains are found in the database and by their
/// anchors, so a chain deleted from the database still shows.
pub async fn verify(args: &VerifyArgs) -> Result<i32> {
    use warden_store::anchor::Anchors;
    use warden_store::audit::{AuditKey, Verifier};
    use warden_store::MetaStore;
    let db = args.data_dir.join("warden.db");
    if !db.is_file() {
        anyhow::bail!("no database at {}", db.display());
    }
    let key_file = args
        .audit_key
        .clone()
        .unwrap_or_else(|| args.data_dir.join("audit.key"));
    let key = AuditKey::load(&key_file).context("the audit key (see --audit-key)")?;
    let objects = warden_store::Objects::local(&args.data_dir.join("objects"))?;
    let anchors = Anchors::new(&objects, key.clone());
    let meta = warden_store::sqlite::open(&db).await?;
    let mut tenants = meta.audit_tenants().await?;
    tenants.extend(anchors.tenants().await?);
    tenants.sort();
    tenants.dedup();
    let mut broken = 0;
    for tenant in tenants {
        let anchor = match anchors.read(&tenant).await {
            Ok(a) => a,
            Err(e) => {
                broken += 1;
                println!("{tenant}: BROKEN: {e}");
                continue;
            }
        };
        let mut v = Verifier::keyed(&key, anchor);
        let mut after = 0;
        let mut count = 0u64;
        let outcome = loop {
            let page = meta.list_audit(&tenant, after, 1000).await?;
            let Some(last) = page.last() else {
                break v.finish();
            };
            after = last.seq;
            count += page.len() as u64;
            if let Err(e) = page.iter().try_for_each(|e| v.push(e)) {
                break Err(e);
            }
        };
        match outcome {
            Ok(()) => println!("{tenant}: ok ({count} entries)"),
            Err(e) => {
                broken += 1;
                println!("{tenant}: BROKEN: {e}");
            }
        }
    }
    Ok(if broken == 0 { 0 } else { 1 })
}

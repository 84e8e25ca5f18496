//! The HTTP client subcommands: `tenant`, `key`, `file`, `sandbox`, `exec`,
//! `secret`, `audit` and `usage`, each a thin front end over one part of the API in
//! `docs/api.md`.
//!
//! Exit status: 0 on success; for `exec`, the command's own (128+N for a
//! signal N, 124 on timeout, 126/127 when it cannot be executed / found);
//! 125 for every other failure, with one line `warden: …` on stderr.

pub mod audit;
pub mod command_policy;
pub mod egress;
pub mod events;
pub mod exec;
mod exec_tty;
pub mod file;
pub mod http;
pub mod image;
pub mod key;
pub mod mcp;
pub mod output;
pub mod parse;
pub mod review;
pub mod sandbox;
pub mod schedule;
pub mod secret;
pub mod snapshot;
pub mod tenant;
pub mod transfer;
pub mod usage;
pub mod volume;

use anyhow::{anyhow, Result};
use clap::Args;
use std::future::Future;
use std::io::Write;

/// Exit status for Warden's own errors.
pub const WARDEN_ERROR: i32 = 125;

/// Where the server is and how to print its answers; shared by every client
/// subcommand.
#[derive(Args, Debug, Clone)]
pub struct Server {
    /// Base URL of the Warden server.
    #[arg(
        long,
        env = "WARDEN_URL",
        default_value = "http://127.0.0.1:7300",
        global = true,
        value_name = "URL"
    )]
    pub url: String,
    /// Print the server's JSON answer (one document on stdout) instead of a
    /// table or line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A tenant API key (`wk_…`), for everything but `/v1/tenants…`.
#[derive(Args, Debug, Clone)]
pub struct TenantAuth {
    /// Tenant API key.
    #[arg(
        long = "api-key",
        env = "WARDEN_API_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
}

/// The admin token, for `/v1/tenants…`.
#[derive(Args, Debug, Clone)]
pub struct AdminAuth {
    /// Admin token.
    #[arg(
        long = "admin-token",
        env = "WARDEN_ADMIN_TOKEN",
        hide_env_values = true,
        global = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
}

/// `--limit` / `--cursor` for listings.
#[derive(Args, Debug, Clone)]
pub struct Page {
    /// Most items in one answer (1–1000; the server's default is 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Continue a listing from the `next_cursor` of an earlier answer.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

impl Page {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(c) = &self.cursor {
            q.push(("cursor", c.clone()));
        }
        q
    }
}

/// Runs one client command on a current-thread runtime and turns its
/// outcome into an exit status.
pub fn main<F>(command: F) -> i32
where
    F: Future<Output = Result<i32>>,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow!(e)),
    };
    match rt.block_on(command) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// Prints `warden: <error>` as one line on stderr; returns 125.
pub fn fail(e: anyhow::Error) -> i32 {
    let _ = writeln!(
        std::io::stderr(),
        "warden: {}",
        parse::one_line(&format!("{e:#}"))
    );
    WARDEN_ERROR
}

/// A one-line note on stderr (never fails the command).
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "warden: {}", parse::one_line(msg));
}

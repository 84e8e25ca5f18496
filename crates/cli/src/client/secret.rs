//! `warden secret …`: the tenant's secrets. Values go in (from stdin by
//! default, so they stay out of shell history and `ps`) and never come
//! back: listings show names and times.

use super::http::Api;
use super::output::{self, field, Table};
use super::{Server, TenantAuth};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;
use std::io::Read;

#[derive(Args, Debug)]
pub struct SecretArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store a secret; its value is read from stdin (one trailing newline
    /// dropped) unless --value is given.
    Set {
        /// An environment variable name, e.g. OPENAI_API_KEY.
        name: String,
        /// The value on the command line (visible in shell history and to
        /// `ps`: prefer stdin).
        #[arg(long, value_name = "VALUE")]
        value: Option<String>,
        /// Replace the value of an existing secret of that name.
        #[arg(long)]
        replace: bool,
    },
    /// List the secrets' names (values are never shown).
    List,
    /// Delete a secret.
    Rm { name: String },
}

/// A value piped in: one trailing newline (as `echo` adds) is not part of it.
fn value_from(mut input: impl Read) -> Result<String> {
    let mut v = String::new();
    input
        .read_to_string(&mut v)
        .context("reading the secret's value from stdin (UTF-8 text)")?;
    if v.ends_with('\n') {
        v.pop();
        if v.ends_with('\r') {
            v.pop();
        }
    }
    if v.is_empty() {
        bail!("no value on stdin (pipe it in, or give --value)");
    }
    Ok(v)
}

pub async fn run(a: SecretArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let as_json = a.server.json;
    match a.command {
        SecretCommand::Set {
            name,
            value,
            replace,
        } => {
            let value = match value {
                Some(v) => v,
                None => value_from(std::io::stdin().lock())?,
            };
            let mut rb = api
                .request(Method::POST, &["v1", "secrets"])?
                .json(&json!({ "name": name, "value": value }));
            if replace {
                rb = rb.query(&[("replace", "true")]);
            }
            let v = api.json(rb).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            output::out(&format!("{}\n", field(&v, "name")))?;
        }
        SecretCommand::List => {
            let v = api.get(&["v1", "secrets"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&["NAME", "CREATED", "UPDATED"]);
            for s in output::items(&v)? {
                t.row(vec![
                    field(s, "name"),
                    field(s, "created_at"),
                    field(s, "updated_at"),
                ]);
            }
            t.print()?;
        }
        SecretCommand::Rm { name } => {
            let v = api.delete(&["v1", "secrets", &name], &[]).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {name}\n"))?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_values_lose_one_trailing_newline() {
        assert_eq!(value_from(&b"s3cret-1\n"[..]).unwrap(), "s3cret-1");
        assert_eq!(value_from(&b"s3cret-1\r\n"[..]).unwrap(), "s3cret-1");
        assert_eq!(value_from(&b"a b\n\n"[..]).unwrap(), "a b\n");
        assert!(value_from(&b"\n"[..]).is_err());
        assert!(value_from(&b"\xff\xfe"[..]).is_err());
    }
}

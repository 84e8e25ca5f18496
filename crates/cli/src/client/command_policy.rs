//! `warden tenant command-policy TENANT …`: show or replace a tenant's
//! command policy (admin token). See docs/api.md, "Command policy".

use super::http::Api;
use super::output;
use anyhow::{Context, Result};
use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CommandPolicyArgs {
    /// The tenant (`tn_…`).
    pub id: String,
    /// Refuse commands matching this glob (repeatable; `*` also matches
    /// `/`). Giving any rule replaces the whole policy.
    #[arg(long, value_name = "PATTERN")]
    pub deny: Vec<String>,
    /// Run only commands matching one of these globs (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub allow: Vec<String>,
    /// Ask the server's policy hook about commands the patterns let through.
    #[arg(long)]
    pub hook: bool,
    /// The policy as a JSON file (`{"deny": [...], "allow": [...], "hook":
    /// false}`), instead of the flags.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["deny", "allow", "hook", "clear"])]
    pub file: Option<PathBuf>,
    /// Remove the policy: every command runs.
    #[arg(long, conflicts_with_all = ["deny", "allow", "hook"])]
    pub clear: bool,
}

/// The PUT body the flags ask for, or `None` to only show the policy.
pub fn body(a: &CommandPolicyArgs) -> Result<Option<Value>> {
    if let Some(path) = &a.file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        return Ok(Some(v));
    }
    if a.clear {
        return Ok(Some(json!({})));
    }
    if a.deny.is_empty() && a.allow.is_empty() && !a.hook {
        return Ok(None);
    }
    Ok(Some(
        json!({"deny": a.deny, "allow": a.allow, "hook": a.hook}),
    ))
}

pub async fn run(api: &Api, a: CommandPolicyArgs, as_json: bool) -> Result<()> {
    let path = ["v1", "tenants", a.id.as_str(), "command-policy"];
    let p = match body(&a)? {
        Some(b) => api.json(api.request(Method::PUT, &path)?.json(&b)).await?,
        None => api.get(&path, &[]).await?,
    };
    if as_json {
        return output::json(&p);
    }
    let list = |k: &str| -> String {
        let items: Vec<String> = p[k]
            .as_array()
            .map(|l| l.iter().map(|v| format!("{v}")).collect())
            .unwrap_or_default();
        match items.is_empty() {
            true => "(none)".into(),
            false => items.join(", "),
        }
    };
    let hook = match (p["hook"].as_bool(), p["hook_configured"].as_bool()) {
        (Some(true), Some(false)) => "on (but the server has no hook: commands are refused)",
        (Some(true), _) => "on",
        _ => "off",
    };
    output::fields(&[
        ("deny", list("deny")),
        ("allow", list("allow")),
        ("hook", hook.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(deny: &[&str], allow: &[&str], hook: bool, clear: bool) -> CommandPolicyArgs {
        CommandPolicyArgs {
            id: "tn_x".into(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            hook,
            file: None,
            clear,
        }
    }

    #[test]
    fn flags_become_the_whole_policy() {
        assert_eq!(body(&args(&[], &[], false, false)).unwrap(), None);
        assert_eq!(
            body(&args(&["rm -rf *"], &[], true, false)).unwrap(),
            Some(json!({"deny": ["rm -rf *"], "allow": [], "hook": true}))
        );
        assert_eq!(body(&args(&[], &[], false, true)).unwrap(), Some(json!({})));
    }
}

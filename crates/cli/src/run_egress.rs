//! `warden run --allow-host`: the egress proxy in the CLI's own process.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use warden_egress::{Egress, EgressEvent, Outcome, Overrides, Policy};
use warden_runtime::Sandbox;
use warden_spec::{EgressRule, NetworkMode, SandboxSpec};

/// The network mode `--allow-host` asks for (none without it).
pub fn network(allow: &[String], resolve: &[String]) -> Result<NetworkMode> {
    if allow.is_empty() {
        if !resolve.is_empty() {
            bail!("--resolve only applies with --allow-host");
        }
        return Ok(NetworkMode::None);
    }
    let rules = allow
        .iter()
        .map(|h| EgressRule::parse(h).with_context(|| format!("--allow-host {h}")))
        .collect::<Result<Vec<_>>>()?;
    Overrides::parse(resolve.iter().map(String::as_str))?;
    Ok(NetworkMode::Allowlist { rules })
}

/// Starts the proxy on the sandbox's listener. Denials are summarised on
/// stderr; with `log`, every attempt is written there as a JSON line.
pub fn start(
    spec: &SandboxSpec,
    sandbox: &mut dyn Sandbox,
    resolve: &[String],
    log: Option<&Path>,
) -> Result<Option<Egress>> {
    let Some(rules) = spec.network.rules() else {
        return Ok(None);
    };
    let listener = sandbox
        .take_egress_listener()
        .context("the sandbox has no egress listener")?;
    let file = match log {
        Some(p) => Some(Mutex::new(
            std::fs::File::create(p).with_context(|| format!("--egress-log {}", p.display()))?,
        )),
        None => None,
    };
    let sink = move |ev: EgressEvent| {
        if ev.outcome != Outcome::Allowed {
            eprintln!(
                "warden: egress {}: {} {}:{} ({})",
                if ev.outcome == Outcome::Denied {
                    "denied"
                } else {
                    "failed"
                },
                ev.method,
                ev.host,
                ev.port,
                ev.detail.as_deref().unwrap_or("")
            );
        }
        if let Some(f) = &file {
            if let Ok(line) = serde_json::to_string(&ev) {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "{line}");
            }
        }
    };
    let policy = Policy {
        rules: rules.to_vec(),
        overrides: Arc::new(Overrides::parse(resolve.iter().map(String::as_str))?),
    };
    Ok(Some(
        Egress::start(listener, policy, Arc::new(sink)).context("starting the egress proxy")?,
    ))
}

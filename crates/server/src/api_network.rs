//! The API's JSON shapes for networks: a sandbox's egress allowlist as
//! asked for and stored, and the entries of its egress log.

use crate::api::time;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_store as store;

/// A sandbox's network: `none` (loopback only) or `allowlist` (an HTTP(S)
/// proxy at `127.0.0.1:3128` inside the sandbox, set in `HTTP_PROXY` and
/// `HTTPS_PROXY`, reaches the hosts the rules allow and nothing else).
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `none` | `allowlist`
    pub mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<EgressRuleBody>,
}

/// An exact host name or `*.suffix` (names below it); ports default to 443
/// and 80. IP addresses are refused: destinations are allowed by name.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EgressRuleBody {
    pub host: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
}

impl Default for Network {
    fn default() -> Self {
        Network::none()
    }
}

impl Network {
    pub fn none() -> Network {
        Network {
            mode: "none".into(),
            rules: Vec::new(),
        }
    }

    /// Checks the request and turns it into the spec's mode.
    pub fn to_mode(&self) -> crate::service::Result<warden_spec::NetworkMode> {
        use crate::service::Error;
        match self.mode.as_str() {
            "none" if self.rules.is_empty() => Ok(warden_spec::NetworkMode::None),
            "none" => Err(Error::invalid(
                "network: rules need {\"mode\": \"allowlist\"}",
            )),
            "allowlist" => {
                let rules: Vec<warden_spec::EgressRule> = self
                    .rules
                    .iter()
                    .map(|r| warden_spec::EgressRule {
                        host: r.host.trim().to_ascii_lowercase(),
                        ports: r.ports.clone(),
                    })
                    .collect();
                warden_spec::validate_rules(&rules)
                    .map_err(|e| Error::invalid(format!("network: {e}")))?;
                Ok(warden_spec::NetworkMode::Allowlist { rules })
            }
            other => Err(Error::invalid(format!(
                "network.mode {other:?}: expected \"none\" or \"allowlist\""
            ))),
        }
    }

    /// The normalised form of a mode, as stored and shown.
    pub fn from_mode(mode: &warden_spec::NetworkMode) -> Network {
        match mode.rules() {
            None => Network::none(),
            Some(rules) => Network {
                mode: "allowlist".into(),
                rules: rules
                    .iter()
                    .map(|r| EgressRuleBody {
                        host: r.host.clone(),
                        ports: r.ports.clone(),
                    })
                    .collect(),
            },
        }
    }
}

/// One attempt in a sandbox's egress log.
#[derive(Serialize, ToSchema)]
pub struct EgressEntry {
    /// Position in the log (pass as `after` to read on).
    pub seq: i64,
    pub at: String,
    /// `CONNECT`, or the plain-HTTP method.
    pub method: String,
    pub host: String,
    pub port: u16,
    /// The address connected to, when one was.
    pub addr: Option<String>,
    /// allowed | denied | failed
    pub outcome: String,
    /// The rule that allowed it.
    pub rule: Option<String>,
    /// Why it was refused: no_rule, ip_literal, bad_host, not_public,
    /// resolve_failed, sni_mismatch, sni_missing, not_tls, host_mismatch,
    /// not_proxy_request, unsupported_scheme, connect_failed, ...
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: u64,
    /// The sandbox it came from (a review may have run more than one).
    pub sandbox_id: String,
}

impl EgressEntry {
    pub fn new(sandbox: &store::SandboxId, e: store::EgressEntry) -> EgressEntry {
        let ev = e.event;
        EgressEntry {
            seq: e.seq,
            at: time(ev.at_ms as i64),
            method: ev.method,
            host: ev.host,
            port: ev.port,
            addr: ev.addr,
            outcome: ev.outcome.as_str().into(),
            rule: ev.rule,
            reason: ev.reason,
            detail: ev.detail,
            bytes_up: ev.bytes_up,
            bytes_down: ev.bytes_down,
            duration_ms: ev.duration_ms,
            sandbox_id: sandbox.to_string(),
        }
    }
}

/// A page of the egress log.
#[derive(Serialize, ToSchema)]
pub struct EgressPage {
    pub items: Vec<EgressEntry>,
    /// Pass as `after` for the next page; absent at the end.
    pub next_after: Option<i64>,
}

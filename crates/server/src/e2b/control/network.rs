//! E2B network settings onto Warden egress. Warden denies all egress by
//! default and allows host names through its proxy, so:
//!
//! - host names in `allowOut` (`example.com`, `*.example.com`) become
//!   allowlist rules; IP addresses and CIDR blocks there are refused, as
//!   Warden allows destinations by name only;
//! - `denyOut` (addresses and CIDR blocks, as in E2B) is already in force:
//!   everything not allowed is denied;
//! - internet access (`allow_internet_access`, on unless it is false or
//!   `denyOut` holds `0.0.0.0/0`) adds the operator's `[e2b]
//!   internet_allow` rules, none by default;
//! - a sandbox created with internet access off and no `allowOut` gets no
//!   network at all (no proxy, so its rules cannot change later); any
//!   other gets an egress proxy, possibly with no rules.

use super::auth::E2bCaller;
use super::error::{E2bJson, E2bResult};
use super::models::NetworkConfig;
use crate::api::{EgressRuleBody, Network};
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::net::IpAddr;
use warden_spec::EgressRule;

/// `0.0.0.0/0` (the SDKs' `ALL_TRAFFIC`), `::/0`, or an address.
fn is_address(s: &str) -> bool {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    addr.parse::<IpAddr>().is_ok()
}

fn denies_everything(deny: &[String]) -> bool {
    deny.iter()
        .any(|d| matches!(d.trim(), "0.0.0.0/0" | "::/0"))
}

/// Refuses the settings Warden has nothing to honour them with.
fn check_supported(net: &NetworkConfig) -> crate::service::Result<()> {
    let refuse = |what: &str| Err(crate::service::Error::invalid(format!("network.{what}")));
    if net.egress_proxy.as_ref().is_some_and(|v| !v.is_null()) {
        return refuse("egressProxy: Warden sends allowed traffic out through its own proxy only");
    }
    if net
        .rules
        .as_ref()
        .is_some_and(|v| !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty())))
    {
        return refuse("rules: request transforms are not supported by Warden");
    }
    if net.mask_request_host.is_some() {
        return refuse("maskRequestHost is not supported by Warden");
    }
    if net.https_ports.as_ref().is_some_and(|p| !p.is_empty()) {
        return refuse("httpsPorts: Warden serves sandbox ports over HTTP to the server only");
    }
    Ok(())
}

/// The rules a request asks for (see the module docs).
pub(super) fn rules(
    st: &Shared,
    allow_internet: Option<bool>,
    net: &NetworkConfig,
) -> crate::service::Result<Vec<EgressRule>> {
    use crate::service::Error;
    check_supported(net)?;
    let deny = net.deny_out.as_deref().unwrap_or_default();
    if let Some(d) = deny.iter().find(|d| !is_address(d.trim())) {
        return Err(Error::invalid(format!(
            "network.denyOut {d:?}: only IP addresses and CIDR blocks can be denied"
        )));
    }
    let mut rules = Vec::new();
    for entry in net.allow_out.as_deref().unwrap_or_default() {
        let entry = entry.trim();
        if is_address(entry) {
            return Err(Error::invalid(format!(
                "network.allowOut {entry:?}: Warden allows destinations by host name only \
                 (example.com, *.example.com), not IP addresses or CIDR blocks"
            )));
        }
        let rule = EgressRule::parse(entry)
            .map_err(|e| Error::invalid(format!("network.allowOut: {e}")))?;
        rules.push(rule);
    }
    if allow_internet != Some(false) && !denies_everything(deny) {
        let internet = st
            .cfg
            .e2b
            .internet_rules()
            .map_err(|e| Error::internal("[e2b] internet_allow", e))?;
        for r in internet {
            if !rules.contains(&r) {
                rules.push(r);
            }
        }
    }
    warden_spec::validate_rules(&rules).map_err(|e| Error::invalid(format!("network: {e}")))?;
    Ok(rules)
}

/// The native network of a new sandbox.
pub(super) fn for_create(
    st: &Shared,
    allow_internet: Option<bool>,
    net: Option<&NetworkConfig>,
) -> E2bResult<Network> {
    let empty = NetworkConfig::default();
    let net = net.unwrap_or(&empty);
    let rules = rules(st, allow_internet, net)?;
    let asked_for_hosts = net.allow_out.as_ref().is_some_and(|a| !a.is_empty());
    if allow_internet == Some(false) && !asked_for_hosts {
        return Ok(Network::none());
    }
    // On gVisor an allowlist means the host's network stack, which keeps a
    // sandbox from pausing with its memory; with nothing to allow, no
    // network at all (its rules cannot be set later, said in docs/e2b.md).
    if rules.is_empty() && st.cfg.e2b.isolation == "gvisor" {
        return Ok(Network::none());
    }
    Ok(Network {
        mode: "allowlist".into(),
        rules: rules
            .into_iter()
            .map(|r| EgressRuleBody {
                host: r.host,
                ports: r.ports,
            })
            .collect(),
    })
}

/// `PUT /sandboxes/{id}/network`: replaces the running sandbox's rules
/// (omitted fields clear, as in E2B); 409 for a sandbox without egress.
pub async fn update(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    E2bJson(req): E2bJson<NetworkConfig>,
) -> E2bResult<StatusCode> {
    let live = super::view::live(&st, &caller, &id).await?;
    let rules = if live.has_egress() {
        rules(&st, req.allow_internet_access, &req)
    } else {
        Err(crate::service::Error::conflict(
            "the sandbox was created without network access (allow_internet_access \
             false and no allowOut), so it has no egress proxy whose rules could change",
        ))
    };
    crate::service::egress::set_rules(&st, &caller, &live, rules).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_are_told_apart() {
        for a in [
            "8.8.8.8",
            "8.8.8.0/24",
            "0.0.0.0/0",
            "::1",
            "::/0",
            "[::1]",
            "fe80::1/64",
        ] {
            assert!(is_address(a), "{a}");
        }
        for n in ["example.com", "*.example.com", "localhost", "1.2.3.example"] {
            assert!(!is_address(n), "{n}");
        }
        assert!(denies_everything(&["1.1.1.1".into(), " 0.0.0.0/0".into()]));
        assert!(!denies_everything(&["1.1.1.1".into()]));
    }
}

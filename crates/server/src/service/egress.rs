//! A running sandbox's egress rules, whoever changes them (`/v1`, the E2B
//! control API): applied to its proxy, recorded with the sandbox, audited
//! whatever the outcome (a refused request too).

use crate::api::Network;
use crate::auth::Caller;
use crate::manager::Live;
use crate::service::audit::{Action, Audit};
use crate::service::{Error, Result};
use crate::state::Shared;

/// Replaces a live sandbox's egress rules (recorded with the sandbox) and
/// audits the attempt, refused ones included; both APIs change rules
/// through here. A sandbox created without egress has no proxy to change.
pub async fn set_rules(
    st: &Shared,
    caller: &Caller,
    live: &Live,
    rules: Result<Vec<warden_spec::EgressRule>>,
) -> Result<Network> {
    let result = async {
        let rules = rules?;
        let stored = Network::from_mode(&warden_spec::NetworkMode::Allowlist {
            rules: rules.clone(),
        });
        if !live.set_egress_rules(rules) {
            return Err(Error::conflict(
                "the sandbox was created with network \"none\" and has no egress proxy; \
                 create it with {\"mode\": \"allowlist\"} to change rules later",
            ));
        }
        let value = serde_json::to_value(&stored).map_err(|e| Error::internal("encoding", e))?;
        caller.store.set_sandbox_network(&live.id, &value).await?;
        Ok(stored)
    }
    .await;
    let outcome = match &result {
        Ok(n) => {
            let hosts: Vec<&str> = n.rules.iter().map(|r| r.host.as_str()).collect();
            format!("ok ({})", hosts.join(" "))
        }
        Err(e) => e.code().to_string(),
    };
    crate::service::audit::append(
        st.meta.as_ref(),
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxNetworkSet,
            target: live.id.as_str(),
            outcome: &outcome,
        },
    )
    .await?;
    result
}

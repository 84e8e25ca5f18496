//! `[e2b]`: the operator's side of the E2B-compatible API.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::fmt;
use warden_spec::EgressRule;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct E2bConfig {
    /// The base domain sandboxes are reached at (`<port>-<id>.<domain>`),
    /// returned as `domain` by create and connect; none by default (the
    /// SDK then needs `E2B_SANDBOX_URL`).
    pub domain: Option<String>,
    /// What "internet access" means for an E2B sandbox: Warden's egress
    /// is deny-by-default with host-name allowlists, so
    /// `allow_internet_access` (true unless the SDK says otherwise) grants
    /// exactly these rules (`host`, `*.suffix`, `host:port[,port]`). Empty
    /// (the default): no egress at all.
    pub internet_allow: Vec<String>,
}

impl E2bConfig {
    /// `WARDEN_E2B_DOMAIN` and `WARDEN_E2B_INTERNET_ALLOW` (comma list)
    /// over the file's values, then checks the rules.
    pub(super) fn apply_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("WARDEN_E2B_DOMAIN") {
            let v = v.trim().trim_matches('.').to_string();
            self.domain = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get("WARDEN_E2B_INTERNET_ALLOW") {
            self.internet_allow = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        self.internet_rules().context("[e2b] internet_allow")?;
        Ok(())
    }

    /// The rules `allow_internet_access` grants.
    pub fn internet_rules(&self) -> Result<Vec<EgressRule>> {
        let rules = self
            .internet_allow
            .iter()
            .map(|r| EgressRule::parse(r.trim()).with_context(|| format!("{r:?}")))
            .collect::<Result<Vec<_>>>()?;
        warden_spec::validate_rules(&rules)?;
        Ok(rules)
    }
}

impl fmt::Display for E2bConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[e2b]")?;
        match &self.domain {
            Some(d) => writeln!(f, "domain = {d:?}")?,
            None => writeln!(f, "domain = (none)")?,
        }
        writeln!(f, "internet_allow = {:?}", self.internet_allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internet_rules_come_from_the_environment_and_are_checked() {
        let mut c = E2bConfig::default();
        c.apply_env(&|k: &str| {
            (k == "WARDEN_E2B_INTERNET_ALLOW").then(|| "pypi.org, *.github.com:443".to_string())
        })
        .unwrap();
        let rules = c.internet_rules().unwrap();
        assert_eq!(rules[0].host, "pypi.org");
        assert_eq!(rules[1].ports, [443]);
        let bad = |v: &'static str| {
            let mut c = E2bConfig::default();
            c.apply_env(&move |k: &str| (k == "WARDEN_E2B_INTERNET_ALLOW").then(|| v.to_string()))
        };
        assert!(bad("10.0.0.1").is_err());
        assert!(bad("*").is_err());
    }
}

//! `[e2b]`: the operator's side of the E2B-compatible API.

use super::knobs::knobs;
use anyhow::{Context, Result};
use warden_spec::EgressRule;

knobs! {
    #[derive(Debug)]
    pub struct E2bConfig {
        /// The base domain sandboxes are reached at (`<port>-<id>.<domain>`,
        /// a wildcard DNS name for this server), returned as `domain` by
        /// create, connect and get. None by default: they then return the
        /// host the client reached the server by, so `get_host(port)` names
        /// this server (resolvable as such for `localhost`), never E2B's.
        pub domain: Option<String> = None, env "WARDEN_E2B_DOMAIN";
        /// What "internet access" means for an E2B sandbox: Warden's egress
        /// is deny-by-default with host-name allowlists, so
        /// `allow_internet_access` (true unless the SDK says otherwise)
        /// grants exactly these rules (`host`, `*.suffix`,
        /// `host:port[,port]`). Empty (the default): no egress at all.
        pub internet_allow: Vec<String> = Vec::new(), env "WARDEN_E2B_INTERNET_ALLOW";
        /// The isolation tier of sandboxes created through the E2B API
        /// (`native` or `gvisor`): E2B's SDKs cannot ask for one. On
        /// `gvisor`, `pause()` keeps processes and memory, as on E2B.
        pub isolation: String = "native".into(), env "WARDEN_E2B_ISOLATION";
    }
}

impl E2bConfig {
    /// The domain without surrounding dots; the rules checked.
    pub(super) fn normalize(&mut self) -> Result<()> {
        if let Some(d) = &self.domain {
            let d = d.trim().trim_matches('.').to_string();
            self.domain = (!d.is_empty()).then_some(d);
        }
        self.internet_rules().context("[e2b] internet_allow")?;
        self.isolation = self.isolation.trim().to_ascii_lowercase();
        if warden_spec::Isolation::from_name(&self.isolation).is_none() {
            anyhow::bail!(
                "[e2b] isolation {:?}: expected \"native\" or \"gvisor\"",
                self.isolation
            );
        }
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

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn internet_rules_come_from_the_environment_and_are_checked() {
        let mut c = Config::default();
        c.apply_env(|k: &str| {
            (k == "WARDEN_E2B_INTERNET_ALLOW").then(|| "pypi.org, *.github.com:443".to_string())
        })
        .unwrap();
        let rules = c.e2b.internet_rules().unwrap();
        assert_eq!(rules[0].host, "pypi.org");
        assert_eq!(rules[1].ports, [443]);
        let bad = |v: &'static str| {
            let mut c = Config::default();
            c.apply_env(move |k: &str| (k == "WARDEN_E2B_INTERNET_ALLOW").then(|| v.to_string()))
        };
        assert!(bad("10.0.0.1").is_err());
        assert!(bad("*").is_err());
    }
}

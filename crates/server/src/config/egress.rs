//! `[egress]`: the operator's side of sandbox egress allowlists.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// `HOST[:PORT]=IP:PORT` routes for allowed names (like curl's
    /// `--resolve`), for tests and private deployments. The address is used
    /// as given, without the public-address check, so this is the
    /// operator's alone: tenants cannot set it.
    pub resolve: Vec<String>,
}

impl EgressConfig {
    /// `WARDEN_EGRESS_RESOLVE` (comma-separated) over the file's value, then
    /// checks the entries.
    pub(super) fn apply_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("WARDEN_EGRESS_RESOLVE") {
            self.resolve = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        self.overrides().context("[egress] resolve")?;
        Ok(())
    }

    pub fn overrides(&self) -> Result<warden_egress::Overrides> {
        Ok(warden_egress::Overrides::parse(
            self.resolve.iter().map(String::as_str),
        )?)
    }
}

impl fmt::Display for EgressConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[egress]")?;
        writeln!(f, "resolve = {:?}", self.resolve)
    }
}

//! `[egress]`: the operator's side of sandbox egress allowlists.

use super::knobs::knobs;
use anyhow::{Context, Result};

knobs! {
    #[derive(Debug)]
    pub struct EgressConfig {
        /// `HOST[:PORT]=IP:PORT` routes for allowed names (like curl's
        /// `--resolve`), for tests and private deployments. The address is
        /// used as given, without the public-address check, so this is the
        /// operator's alone: tenants cannot set it.
        pub resolve: Vec<String> = Vec::new(), env "WARDEN_EGRESS_RESOLVE";
    }
}

impl EgressConfig {
    /// Checks the entries.
    pub(super) fn normalize(&mut self) -> Result<()> {
        self.overrides().context("[egress] resolve")?;
        Ok(())
    }

    pub fn overrides(&self) -> Result<warden_egress::Overrides> {
        Ok(warden_egress::Overrides::parse(
            self.resolve.iter().map(String::as_str),
        )?)
    }
}

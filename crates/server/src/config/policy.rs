//! `[command_policy]`: the operator's side of command policy (see
//! `policy`). Tenants' deny/allow rules are set per tenant through the
//! API; the hook runs on the host, so only the operator can name it.

use anyhow::Result;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandPolicyConfig {
    /// A program (and its arguments) asked about each exec of a tenant
    /// whose policy has `hook: true`: the request as JSON on stdin, the
    /// answer `{"allow": bool, "reason": "…"}` on stdout. Empty: no hook,
    /// and policies that want one are refused.
    pub hook: Vec<String>,
    /// A hook that has not answered by then is killed (with everything it
    /// started) and the exec refused.
    pub hook_timeout_ms: u64,
}

/// Longest a hook may be given: an exec waits for it.
const MAX_HOOK_TIMEOUT_MS: u64 = 60_000;

impl Default for CommandPolicyConfig {
    fn default() -> Self {
        CommandPolicyConfig {
            hook: Vec::new(),
            hook_timeout_ms: 2000,
        }
    }
}

impl CommandPolicyConfig {
    pub fn hook_timeout(&self) -> Duration {
        Duration::from_millis(self.hook_timeout_ms.clamp(1, MAX_HOOK_TIMEOUT_MS))
    }

    /// `WARDEN_COMMAND_POLICY_*` over the file's values.
    pub(super) fn apply_env(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
        num: &impl Fn(&str) -> Result<Option<u64>>,
    ) -> Result<()> {
        if let Some(v) = get("WARDEN_COMMAND_POLICY_HOOK") {
            self.hook = super::command_from_env("WARDEN_COMMAND_POLICY_HOOK", &v)?;
        }
        if let Some(v) = num("WARDEN_COMMAND_POLICY_HOOK_TIMEOUT_MS")? {
            self.hook_timeout_ms = v.clamp(1, MAX_HOOK_TIMEOUT_MS);
        }
        Ok(())
    }
}

/// The section as TOML.
impl fmt::Display for CommandPolicyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[command_policy]")?;
        writeln!(f, "hook = {:?}", self.hook)?;
        write!(f, "hook_timeout_ms = {}", self.hook_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn file_then_env() {
        let mut cfg: Config =
            toml::from_str("[command_policy]\nhook = [\"/opt/hook\", \"--strict\"]\n").unwrap();
        assert_eq!(cfg.command_policy.hook, ["/opt/hook", "--strict"]);
        assert_eq!(cfg.command_policy.hook_timeout_ms, 2000);
        let env = |k: &str| match k {
            "WARDEN_COMMAND_POLICY_HOOK" => Some(r#"["/opt/my hook", "-v"]"#.to_string()),
            "WARDEN_COMMAND_POLICY_HOOK_TIMEOUT_MS" => Some("500".to_string()),
            _ => None,
        };
        cfg.apply_env(env).unwrap();
        let p = &cfg.command_policy;
        assert_eq!(p.hook, ["/opt/my hook", "-v"]);
        assert_eq!(p.hook_timeout().as_millis(), 500);
        assert!(cfg.to_string().ends_with(
            "\n[command_policy]\nhook = [\"/opt/my hook\", \"-v\"]\nhook_timeout_ms = 500"
        ));
        assert!(toml::from_str::<Config>("[command_policy]\nhooks = []\n").is_err());
    }
}

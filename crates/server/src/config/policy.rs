//! `[command_policy]`: the operator's side of command policy (see
//! `command_policy`). Tenants' deny/allow rules are set per tenant through
//! the API; the hook runs on the host, so only the operator can name it.

use super::knobs::knobs;
use std::time::Duration;

/// Longest a hook may be given: an exec waits for it.
const MAX_HOOK_TIMEOUT_MS: u64 = 60_000;

knobs! {
    #[derive(Debug)]
    pub struct CommandPolicyConfig {
        /// A program (and its arguments) asked about each exec of a tenant
        /// whose policy has `hook: true`: the request as JSON on stdin, the
        /// answer `{"allow": bool, "reason": "…"}` on stdout. Empty: no
        /// hook, and policies that want one are refused.
        pub hook: Vec<String> = Vec::new(), env "WARDEN_COMMAND_POLICY_HOOK";
        /// A hook that has not answered by then (1 ms to 60 s) is killed
        /// (with everything it started) and the exec refused.
        pub hook_timeout_ms: u64 = 2000, env "WARDEN_COMMAND_POLICY_HOOK_TIMEOUT_MS";
    }
}

impl CommandPolicyConfig {
    pub fn hook_timeout(&self) -> Duration {
        Duration::from_millis(self.hook_timeout_ms.clamp(1, MAX_HOOK_TIMEOUT_MS))
    }

    pub(super) fn normalize(&mut self) {
        self.hook_timeout_ms = self.hook_timeout_ms.clamp(1, MAX_HOOK_TIMEOUT_MS);
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
        assert!(cfg.to_string().contains(
            "\n[command_policy]\nhook = [\"/opt/my hook\", \"-v\"]\nhook_timeout_ms = 500\n"
        ));
        assert!(toml::from_str::<Config>("[command_policy]\nhooks = []\n").is_err());
    }
}

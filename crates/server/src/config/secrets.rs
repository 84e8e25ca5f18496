//! `[secrets]`: the key tenant secrets are encrypted with at rest.

use anyhow::Result;
use serde::Deserialize;
use std::fmt;

#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// 32 bytes as 64 hex digits or base64 (`openssl rand -hex 32`). Without
    /// it the secrets API and any request naming secrets answer 503
    /// `secrets_disabled`. Losing or changing it makes stored secrets
    /// unreadable: keep it with the database's backups, apart from them.
    pub key: Option<String>,
}

impl SecretsConfig {
    /// `WARDEN_SECRETS_KEY` over the file's value.
    pub(super) fn apply_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("WARDEN_SECRETS_KEY").filter(|v| !v.is_empty()) {
            self.key = Some(v);
        }
        if let Some(k) = &self.key {
            // A key that cannot be used stops the start, rather than
            // leaving secrets silently off.
            crate::secrets::parse_key(k)
                .map_err(|e| anyhow::anyhow!("[secrets] key / WARDEN_SECRETS_KEY: {e}"))?;
        }
        Ok(())
    }
}

/// Never prints the key (a `{:?}` of the configuration may reach a log).
impl fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("key", &self.key.as_ref().map(|_| "****"))
            .finish()
    }
}

/// The section as TOML, the key masked.
impl fmt::Display for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[secrets]")?;
        match self.key {
            Some(_) => writeln!(f, "key = \"****\" (set)"),
            None => writeln!(f, "key = (unset: secrets are disabled)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn key_from_env_is_checked_and_never_shown() {
        let key = "ab".repeat(32);
        let mut cfg = Config::default();
        let k = key.clone();
        cfg.apply_env(move |n| (n == "WARDEN_SECRETS_KEY").then(|| k.clone()))
            .unwrap();
        assert_eq!(cfg.secrets.key.as_deref(), Some(key.as_str()));
        assert!(!cfg.to_string().contains(&key));
        assert!(cfg.to_string().contains("[secrets]\nkey = \"****\""));
        let mut bad = Config::default();
        let e = bad
            .apply_env(|n| (n == "WARDEN_SECRETS_KEY").then(|| "tooshort".to_string()))
            .unwrap_err();
        assert!(format!("{e:#}").contains("WARDEN_SECRETS_KEY"), "{e:#}");
    }
}

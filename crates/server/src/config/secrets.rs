//! `[secrets]`: the key tenant secrets are encrypted with at rest.

use super::knobs::{knobs, masked};
use anyhow::Result;
use std::fmt;

knobs! {
    pub struct SecretsConfig {
        /// 32 bytes as 64 hex digits or base64 (`openssl rand -hex 32`).
        /// Without it the secrets API and any request naming secrets answer
        /// 503 `secrets_disabled`. Losing or changing it makes stored
        /// secrets unreadable: keep it with the database's backups, apart
        /// from them.
        #[serde(serialize_with = "masked")]
        pub key: Option<String> = None, env "WARDEN_SECRETS_KEY";
    }
}

impl SecretsConfig {
    /// A key that cannot be used stops the start, rather than leaving
    /// secrets silently off.
    pub(super) fn normalize(&mut self) -> Result<()> {
        if let Some(k) = &self.key {
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
        assert!(!format!("{cfg:?}").contains(&key));
        assert!(cfg.to_string().contains("[secrets]\nkey = \"****\""));
        let mut bad = Config::default();
        let e = bad
            .apply_env(|n| (n == "WARDEN_SECRETS_KEY").then(|| "tooshort".to_string()))
            .unwrap_err();
        assert!(format!("{e:#}").contains("WARDEN_SECRETS_KEY"), "{e:#}");
    }
}

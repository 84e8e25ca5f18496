//! Tenant secrets: what a name and a value may be, encryption at rest
//! (`crypto`), turning a request's secret names into environment variables
//! for a sandbox, and masking the values in what the sandbox prints
//! (`mask`).
//!
//! Values exist in plaintext only in memory: in the create request, while
//! a sandbox starts (its spec's env) and in the sandbox's masker. They are
//! never written to the database, the sandbox or job records, manifests,
//! audit entries or logs; those hold names.

mod crypto;
pub mod mask;

pub use crypto::{parse_key, Vault};
pub use mask::{MaskStream, Masker};

use std::sync::Arc;
use warden_store::{StoreError, TenantStore};
use zeroize::Zeroizing;

/// Largest value.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Shortest value: shorter ones could not be masked in output without
/// destroying it (and are unlikely to be real credentials).
pub const MIN_VALUE_BYTES: usize = 8;
/// Most secrets one sandbox or review may name.
pub const MAX_PER_SANDBOX: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secrets are disabled on this server")]
    Disabled,
    #[error("secret {0:?} not found")]
    NotFound(String),
    #[error("secret {0:?} cannot be decrypted with this server's key")]
    Undecryptable(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Names are environment variable names: `[A-Z_][A-Z0-9_]{0,63}`.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let mut chars = name.chars();
    let ok = (1..=64).contains(&name.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SecretError::Invalid(format!(
            "secret name {name:?}: 1-64 characters of [A-Z0-9_], not starting with a digit"
        )))
    }
}

/// Values become environment variables: UTF-8 (JSON strings are), no NUL.
pub fn check_value(value: &str) -> Result<(), SecretError> {
    if !(MIN_VALUE_BYTES..=MAX_VALUE_BYTES).contains(&value.len()) {
        return Err(SecretError::Invalid(format!(
            "a secret value is {MIN_VALUE_BYTES} to {MAX_VALUE_BYTES} bytes \
             (shorter values could not be masked in output)"
        )));
    }
    if value.contains('\0') {
        return Err(SecretError::Invalid(
            "a secret value cannot contain NUL (it becomes an environment variable)".into(),
        ));
    }
    Ok(())
}

/// A request's secrets, decrypted: environment variables for the sandbox
/// and the masker for its output. Dropping it wipes the copies it holds.
#[derive(Default)]
pub struct Resolved {
    pub env: Vec<(String, Zeroizing<String>)>,
    pub masker: Option<Arc<Masker>>,
}

impl Resolved {
    /// Adds the secrets to a sandbox spec's environment (in memory only).
    pub fn add_env(&self, env: &mut Vec<(String, String)>) {
        env.extend(
            self.env
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().to_string())),
        );
    }
}

/// Checks a request's list of secret names (syntax, duplicates, clashes
/// with its plain `env`).
fn check_names<'a>(
    names: &[String],
    mut env_names: impl Iterator<Item = &'a String>,
) -> Result<(), SecretError> {
    if names.len() > MAX_PER_SANDBOX {
        return Err(SecretError::Invalid(format!(
            "at most {MAX_PER_SANDBOX} secrets"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for n in names {
        check_name(n)?;
        if !seen.insert(n) {
            return Err(SecretError::Invalid(format!("secret {n:?} is named twice")));
        }
    }
    if let Some(k) = env_names.find(|k| seen.contains(k)) {
        return Err(SecretError::Invalid(format!(
            "{k:?} is both in env and in secrets"
        )));
    }
    Ok(())
}

/// Checks a request's secret names (against its plain `env_names` too),
/// then looks up and decrypts the tenant's secrets of those names.
pub async fn resolve<'a>(
    vault: Option<&Vault>,
    store: &TenantStore,
    names: &[String],
    env_names: impl Iterator<Item = &'a String>,
) -> Result<Resolved, SecretError> {
    if names.is_empty() {
        return Ok(Resolved::default());
    }
    let vault = vault.ok_or(SecretError::Disabled)?;
    check_names(names, env_names)?;
    let mut env = Vec::with_capacity(names.len());
    let mut values = Vec::with_capacity(names.len());
    for name in names {
        let row = store
            .get_secret(name)
            .await?
            .ok_or_else(|| SecretError::NotFound(name.clone()))?;
        let plain = vault
            .open(store.tenant_id(), name, &row.nonce, &row.ciphertext)
            .map_err(|_| SecretError::Undecryptable(name.clone()))?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| SecretError::Undecryptable(name.clone()))?;
        env.push((name.clone(), Zeroizing::new(text.to_string())));
        values.push(plain);
    }
    Ok(Resolved {
        env,
        masker: Masker::new(values),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        for ok in ["A", "_", "API_KEY", "K2", &"X".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2K", "api_key", "A-B", "A B", "É", &"X".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_value("12345678").is_ok());
        assert!(check_value("1234567").is_err());
        assert!(check_value("1234\u{0}5678").is_err());
        assert!(check_value(&"x".repeat(MAX_VALUE_BYTES + 1)).is_err());
        let env = ["HOME".to_string()];
        assert!(check_names(&["A".into(), "B".into()], env.iter()).is_ok());
        assert!(check_names(&["A".into(), "A".into()], env.iter()).is_err());
        assert!(check_names(&["HOME".into()], env.iter()).is_err());
    }
}

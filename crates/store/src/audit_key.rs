//! The server's audit key: what keys every audit entry's hash and signs
//! every chain's anchor (see `audit.rs`, `anchor.rs`). A file of its own,
//! never in the database.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// The server's key for audit entries and anchors: 32 random bytes, kept
/// in a file of its own (mode 0600), never in the database.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// Why the audit key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit key file {path} does not hold 64 hex digits")]
    Malformed { path: String },
}

impl AuditKey {
    pub fn generate() -> AuditKey {
        AuditKey(rand::random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> AuditKey {
        AuditKey(bytes)
    }

    /// Reads the key file (64 hex digits).
    pub fn load(path: &Path) -> Result<AuditKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let malformed = || KeyError::Malformed {
            path: path.display().to_string(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
        Ok(AuditKey(bytes.try_into().map_err(|_| malformed())?))
    }

    /// Reads the key file, creating it (mode 0600, a fresh key) if missing.
    pub fn load_or_create(path: &Path) -> Result<AuditKey, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let key = AuditKey::generate();
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut f) => {
                f.write_all(hex::encode(key.0).as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => AuditKey::load(path),
            Err(e) => Err(io(e)),
        }
    }

    pub(crate) fn mac(&self, data: &[u8]) -> String {
        // HMAC takes keys of any length; 32 bytes never fails.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(data);
        hex::encode(m.finalize().into_bytes())
    }
}

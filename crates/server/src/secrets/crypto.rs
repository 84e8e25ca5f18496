//! Encryption at rest of secret values: XChaCha20-Poly1305 under the
//! server's key, a fresh random 24-byte nonce per write, and the tenant id
//! and secret name as associated data, so a ciphertext copied into another
//! row (another name, another tenant) does not decrypt.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use warden_store::TenantId;
use zeroize::Zeroizing;

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 24;

/// The server's secrets key, ready to seal and open values.
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

/// Opening failed: wrong key, or a row that was tampered with or moved.
/// Deliberately without detail (AEAD failures have none worth giving).
#[derive(Debug, thiserror::Error)]
#[error("the ciphertext does not decrypt with this key")]
pub struct OpenError;

/// What a row's ciphertext is bound to.
fn aad(tenant: &TenantId, name: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(tenant.as_str().len() + 1 + name.len());
    a.extend_from_slice(tenant.as_str().as_bytes());
    // Neither ids nor names hold NUL, so the pair is unambiguous.
    a.push(0);
    a.extend_from_slice(name.as_bytes());
    a
}

impl Vault {
    pub fn new(key: &[u8; KEY_LEN]) -> Vault {
        Vault {
            cipher: XChaCha20Poly1305::new(&Key::from(*key)),
        }
    }

    /// Encrypts `value` for the row (tenant, name): (nonce, ciphertext).
    pub fn seal(&self, tenant: &TenantId, name: &str, value: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = aad(tenant, name);
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            // Encryption only fails for messages far beyond any value the
            // API accepts (2^38 bytes).
            .unwrap_or_default();
        (nonce.to_vec(), ct)
    }

    /// Decrypts the row (tenant, name); the plaintext is wiped when dropped.
    pub fn open(
        &self,
        tenant: &TenantId,
        name: &str,
        nonce: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let aad = aad(tenant, name);
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError)
    }
}

/// Parses a key given as 64 hex digits or as base64 of 32 bytes.
pub fn parse_key(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    use base64::Engine;
    let text = text.trim();
    let bytes = Zeroizing::new(if text.len() == 2 * KEY_LEN {
        hex::decode(text).map_err(|_| "64 characters but not hex".to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| "neither 64 hex digits nor base64".to_string())?
    });
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "the key is {} bytes; it must be {KEY_LEN} (e.g. `openssl rand -hex 32`)",
            bytes.len()
        )
    })?;
    Ok(Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(s: &str) -> TenantId {
        TenantId::from_stored(s.to_string())
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let v = Vault::new(&[7; 32]);
        let t = tenant("ten_a");
        let (n1, c1) = v.seal(&t, "API_KEY", b"sk-live-123456");
        let (n2, c2) = v.seal(&t, "API_KEY", b"sk-live-123456");
        assert_ne!((n1.clone(), c1.clone()), (n2, c2), "nonces repeat");
        assert_eq!(n1.len(), NONCE_LEN);
        assert!(!c1.windows(6).any(|w| w == b"sk-liv"));
        assert_eq!(
            &*v.open(&t, "API_KEY", &n1, &c1).unwrap(),
            b"sk-live-123456"
        );
    }

    #[test]
    fn bound_to_tenant_name_and_key_and_tamper_evident() {
        let v = Vault::new(&[7; 32]);
        let (a, b) = (tenant("ten_a"), tenant("ten_b"));
        let (n, c) = v.seal(&a, "API_KEY", b"value-value");
        assert!(
            v.open(&b, "API_KEY", &n, &c).is_err(),
            "moved to another tenant"
        );
        assert!(
            v.open(&a, "OTHER", &n, &c).is_err(),
            "moved to another name"
        );
        // The separator keeps ("ten_a", "X") apart from ("ten_a\0"...): a
        // shifted boundary is a different binding.
        assert!(v.open(&tenant("ten_aA"), "PI_KEY", &n, &c).is_err());
        assert!(
            Vault::new(&[8; 32]).open(&a, "API_KEY", &n, &c).is_err(),
            "other key"
        );
        let mut bad = c.clone();
        bad[0] ^= 1;
        assert!(
            v.open(&a, "API_KEY", &n, &bad).is_err(),
            "tampered ciphertext"
        );
        let mut bad_nonce = n.clone();
        bad_nonce[3] ^= 1;
        assert!(
            v.open(&a, "API_KEY", &bad_nonce, &c).is_err(),
            "tampered nonce"
        );
        assert!(v.open(&a, "API_KEY", &n[..12], &c).is_err(), "short nonce");
    }

    #[test]
    fn keys_parse_from_hex_or_base64() {
        let hex_key = "00".repeat(31) + "ff";
        assert_eq!(parse_key(&hex_key).unwrap()[31], 0xff);
        let b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        assert_eq!(*parse_key(b64).unwrap(), [1u8; 32]);
        assert!(parse_key("short").is_err());
        assert!(parse_key(&"zz".repeat(32)).is_err());
        let e = parse_key("AQID").unwrap_err();
        assert!(e.contains("3 bytes"), "{e}");
    }
}

//! Signed upload URLs: `PUT /v1/uploads/{token}` without an API key.
//!
//! token = base64url(claims JSON) "." base64url(HMAC-SHA256(key, claims)).
//! The claims name the tenant, the file name and the expiry; a random nonce
//! makes each URL single-use (recorded in the database when used).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Tenant id.
    pub t: String,
    /// File name (already checked).
    pub n: String,
    /// Expiry, Unix millis.
    pub e: i64,
    /// Nonce.
    pub x: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the upload URL is malformed")]
    Malformed,
    #[error("the upload URL's signature does not match")]
    BadSignature,
    #[error("the upload URL has expired")]
    Expired,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

pub fn sign(key: &[u8], claims: &Claims) -> String {
    let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mut m = mac(key);
    m.update(body.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{body}.{sig}")
}

pub fn verify(key: &[u8], token: &str, now_ms: i64) -> Result<Claims, TokenError> {
    let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(key);
    m.update(body.as_bytes());
    // Constant-time comparison.
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let raw = B64.decode(body).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
    if claims.e <= now_ms {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            t: "tn_a".into(),
            n: "a.csv".into(),
            e: 2_000,
            x: "n1".into(),
        }
    }

    #[test]
    fn round_trip_and_tampering() {
        let tok = sign(b"k", &claims());
        assert_eq!(verify(b"k", &tok, 1_000), Ok(claims()));
        assert_eq!(verify(b"other", &tok, 1_000), Err(TokenError::BadSignature));
        assert_eq!(verify(b"k", &tok, 2_000), Err(TokenError::Expired));
        // Another tenant's id in the claims, old signature.
        let (_, sig) = tok.split_once('.').unwrap();
        let mut c = claims();
        c.t = "tn_b".into();
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&c).unwrap()));
        assert_eq!(verify(b"k", &forged, 1_000), Err(TokenError::BadSignature));
        assert_eq!(verify(b"k", "garbage", 1_000), Err(TokenError::Malformed));
    }
}

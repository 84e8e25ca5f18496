//! Per-sandbox envd access tokens: HMAC-SHA256 of the sandbox id under the
//! server's signing key, so any sandbox (created through either API) has
//! one, nothing is stored, and a token names exactly one sandbox.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warden_store::SandboxId;

const CONTEXT: &[u8] = b"warden e2b envd access token v1\0";

fn mac(key: &[u8], id: &SandboxId) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(CONTEXT);
    m.update(id.as_str().as_bytes());
    m.finalize().into_bytes().into()
}

/// The token the control API hands out for sandbox `id`.
pub fn access_token(key: &[u8], id: &SandboxId) -> String {
    format!("ea_{}", B64.encode(mac(key, id)))
}

/// Whether `presented` is sandbox `id`'s token (constant time).
pub fn verify(key: &[u8], id: &SandboxId, presented: &str) -> bool {
    let expected = access_token(key, id);
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_own_sandbox_only() {
        let a = SandboxId::generate();
        let b = SandboxId::generate();
        let t = access_token(b"k1", &a);
        assert!(verify(b"k1", &a, &t));
        assert!(!verify(b"k1", &b, &t));
        assert!(!verify(b"k2", &a, &t));
        assert!(!verify(b"k1", &a, ""));
        assert!(!verify(b"k1", &a, &t[..t.len() - 1]));
    }
}

//! Per-sandbox tokens: HMAC-SHA256 of the sandbox id under the server's
//! signing key, so any sandbox (created through either API) has them,
//! nothing is stored, and a token names exactly one sandbox and one use:
//! the envd access token (`X-Access-Token`: envd, and the sandbox's ports)
//! and the traffic token (`e2b-traffic-access-token`: its ports only).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warden_store::SandboxId;

const CONTEXT: &[u8] = b"warden e2b envd access token v1\0";
const TRAFFIC: &[u8] = b"warden e2b traffic access token v1\0";
const VOLUME: &[u8] = b"warden e2b volume token v1\0";

fn mac(key: &[u8], context: &[u8], id: &SandboxId) -> [u8; 32] {
    mac_of(key, context, id.as_str())
}

fn mac_of(key: &[u8], context: &[u8], id: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(context);
    m.update(id.as_bytes());
    m.finalize().into_bytes().into()
}

/// The token E2B's volume API hands out with volume `id` (for its content
/// API, which Warden does not serve: files reach a volume through the
/// sandboxes that mount it).
pub fn volume_token(key: &[u8], id: &warden_store::VolumeId) -> String {
    format!("ev_{}", B64.encode(mac_of(key, VOLUME, id.as_str())))
}

/// The token the control API hands out for sandbox `id`.
pub fn access_token(key: &[u8], id: &SandboxId) -> String {
    format!("ea_{}", B64.encode(mac(key, CONTEXT, id)))
}

/// The traffic token of sandbox `id`, for its ports when they are not
/// public.
pub fn traffic_token(key: &[u8], id: &SandboxId) -> String {
    format!("et_{}", B64.encode(mac(key, TRAFFIC, id)))
}

fn same(expected: &str, presented: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Whether `presented` is sandbox `id`'s access token (constant time).
pub fn verify(key: &[u8], id: &SandboxId, presented: &str) -> bool {
    same(&access_token(key, id), presented)
}

/// What a signed file URL (`download_url`, `upload_url`) grants: one
/// operation on one path, as one user, until an optional expiry.
pub struct FileGrant<'a> {
    pub path: &'a str,
    /// `read` (a download) or `write` (an upload).
    pub operation: &'a str,
    /// The `username` the URL names; empty for the default user.
    pub user: &'a str,
    /// Unix seconds.
    pub expiration: Option<i64>,
}

/// Whether `signature` is the SDKs' v1 signature of `grant` for sandbox
/// `id`: `v1_` + unpadded base64 of SHA-256 over
/// `path:operation:user:<access token>[:expiration]`, as the SDK computes
/// it from the sandbox's access token (so only a holder of the token can
/// make one). Its expiry is [`FileGrant::expired`]'s to say.
pub fn file_signature_matches(
    key: &[u8],
    id: &SandboxId,
    grant: &FileGrant<'_>,
    signature: &str,
) -> bool {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use sha2::Digest;
    let token = access_token(key, id);
    let FileGrant {
        path,
        operation,
        user,
        expiration,
    } = grant;
    let raw = match expiration {
        None => format!("{path}:{operation}:{user}:{token}"),
        Some(e) => format!("{path}:{operation}:{user}:{token}:{e}"),
    };
    let expected = format!("v1_{}", STANDARD_NO_PAD.encode(Sha256::digest(raw)));
    same(&expected, signature)
}

impl FileGrant<'_> {
    /// Whether the grant's expiry has passed at `now` (Unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.expiration.is_some_and(|e| e < now)
    }
}

/// Whether `presented` is sandbox `id`'s traffic token (constant time).
pub fn verify_traffic(key: &[u8], id: &SandboxId, presented: &str) -> bool {
    same(&traffic_token(key, id), presented)
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
        // Each token opens only what it is for.
        let traffic = traffic_token(b"k1", &a);
        assert!(verify_traffic(b"k1", &a, &traffic));
        assert!(!verify_traffic(b"k1", &a, &t));
        assert!(!verify(b"k1", &a, &traffic));
        assert!(!verify_traffic(b"k1", &b, &traffic));
    }

    #[test]
    fn a_file_signature_grants_its_own_path_operation_and_time_only() {
        use base64::engine::general_purpose::STANDARD_NO_PAD;
        use sha2::Digest;
        let id = SandboxId::generate();
        let token = access_token(b"k", &id);
        // As the SDKs compute it (e2b/sandbox/signature.py).
        let sign = |raw: String| format!("v1_{}", STANDARD_NO_PAD.encode(Sha256::digest(raw)));
        let forever = sign(format!("/a.txt:read::{token}"));
        let until = sign(format!("/a.txt:write:user:{token}:1000"));
        let grant = |path, operation, user, expiration| FileGrant {
            path,
            operation,
            user,
            expiration,
        };
        let ok =
            |g: &FileGrant, id: &SandboxId, sig: &str| file_signature_matches(b"k", id, g, sig);
        assert!(ok(&grant("/a.txt", "read", "", None), &id, &forever));
        assert!(!ok(&grant("/b.txt", "read", "", None), &id, &forever));
        assert!(!ok(&grant("/a.txt", "write", "", None), &id, &forever));
        let other = SandboxId::generate();
        assert!(!ok(&grant("/a.txt", "read", "", None), &other, &forever));
        let w = grant("/a.txt", "write", "user", Some(1000));
        assert!(ok(&w, &id, &until));
        assert!(
            !w.expired(1000) && w.expired(1001),
            "expires after its second"
        );
        let later = grant("/a.txt", "write", "user", Some(2000));
        assert!(!ok(&later, &id, &until), "expiry moved");
    }
}

//! Bearer authentication: the admin token for `/v1/tenants…`, a tenant API
//! key (`wk_<key id>.<secret>`) for everything else. The E2B control API
//! takes the same key in `X-API-Key` and checks it with [`tenant_key`].

use crate::error::ApiError;
use crate::state::Shared;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warden_store::{KeyId, TenantStore};

pub const KEY_PREFIX: &str = "wk_";

/// A new API key's secret part: 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    B64.encode(bytes)
}

pub fn full_key(id: &KeyId, secret: &str) -> String {
    format!("{KEY_PREFIX}{id}.{secret}")
}

pub fn hash_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))
}

/// Whether `token` is the admin token (compared in constant time).
fn is_admin(state: &Shared, token: &str) -> bool {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    bool::from(digest.ct_eq(&state.admin_hash))
}

/// The caller holds the admin token.
pub struct Admin;

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        if is_admin(state, bearer(parts)?) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("invalid admin token"))
        }
    }
}

/// The admin token or any tenant's key: for what every caller may read
/// about the server itself (its isolation tiers).
pub struct AnyCaller;

impl FromRequestParts<Shared> for AnyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if is_admin(state, token) {
            return Ok(AnyCaller);
        }
        tenant_key(state, token).await.map(|_| AnyCaller)
    }
}

/// An authenticated tenant: the only way a handler gets a [`TenantStore`].
pub struct Caller {
    pub store: TenantStore,
    pub key_id: KeyId,
}

impl Caller {
    pub fn actor(&self) -> &str {
        self.key_id.as_str()
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        tenant_key(state, bearer(parts)?).await
    }
}

/// The one check of a tenant API key, whichever header carried it: the
/// key must exist with this secret (compared in constant time), not be
/// revoked, and belong to a tenant that is not disabled.
pub async fn tenant_key(state: &Shared, token: &str) -> Result<Caller, ApiError> {
    let invalid = || ApiError::unauthorized("invalid API key");
    let rest = token.strip_prefix(KEY_PREFIX).ok_or_else(invalid)?;
    let (id, secret) = rest.split_once('.').ok_or_else(invalid)?;
    let id = KeyId::parse(id).ok_or_else(invalid)?;
    let (key, stored_hash) = state.meta.find_key(&id).await?.ok_or_else(invalid)?;
    let presented = hash_hex(secret);
    if !bool::from(presented.as_bytes().ct_eq(stored_hash.as_bytes())) {
        return Err(invalid());
    }
    if key.revoked_at.is_some() {
        return Err(ApiError::unauthorized("this API key has been revoked"));
    }
    let tenant = state
        .meta
        .get_tenant(&key.tenant_id)
        .await?
        .ok_or_else(invalid)?;
    if tenant.disabled {
        return Err(ApiError::forbidden("this tenant is disabled"));
    }
    Ok(Caller {
        store: state.tenant_store(key.tenant_id),
        key_id: key.id,
    })
}

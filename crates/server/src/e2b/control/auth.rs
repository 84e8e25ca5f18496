//! The control API's caller: a Warden tenant API key in `X-API-Key` (what
//! the SDKs send), or in `Authorization: Bearer` like the native API. The
//! key is checked by the same function as the native API's.

use super::error::E2bError;
use crate::auth::{bearer, tenant_key, Caller};
use crate::error::ApiError;
use crate::state::Shared;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub struct E2bCaller(pub Caller);

impl FromRequestParts<Shared> for E2bCaller {
    type Rejection = E2bError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, E2bError> {
        let key = match parts.headers.get("x-api-key") {
            Some(v) => v
                .to_str()
                .map(str::trim)
                .map_err(|_| ApiError::unauthorized("malformed X-API-Key header"))?,
            None if parts
                .headers
                .contains_key(axum::http::header::AUTHORIZATION) =>
            {
                bearer(parts)?
            }
            None => {
                return Err(ApiError::unauthorized(
                    "missing X-API-Key header (a Warden tenant API key, wk_...)",
                )
                .into())
            }
        };
        Ok(E2bCaller(tenant_key(state, key).await?))
    }
}

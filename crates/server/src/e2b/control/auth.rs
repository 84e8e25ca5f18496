//! The control API's caller: a Warden tenant API key in `X-API-Key` (what
//! the SDKs send), or in `Authorization: Bearer` like the native API. The
//! key is checked by the same function as the native API's. It may come in
//! E2B's format ([`e2b_form`]), which E2B's newer JS SDKs insist on.

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
        let key = from_e2b_form(key);
        Ok(E2bCaller(tenant_key(state, &key).await?))
    }
}

/// Prefix of an API key in E2B's format.
const E2B_PREFIX: &str = "e2b_";

/// A Warden key in E2B's format: `e2b_` and the key's bytes in lowercase
/// hex, which passes the SDKs' client-side check (`^e2b_[0-9a-f]+$`).
/// The same key, spelled so; the control API takes either spelling.
pub fn e2b_form(key: &str) -> String {
    format!("{E2B_PREFIX}{}", hex::encode(key))
}

/// The Warden key an E2B-format key spells; anything else as given (a
/// malformed one then fails the key check like any wrong key).
fn from_e2b_form(key: &str) -> std::borrow::Cow<'_, str> {
    key.strip_prefix(E2B_PREFIX)
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .map_or(std::borrow::Cow::Borrowed(key), std::borrow::Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2b_form_round_trips_and_matches_the_sdks_pattern() {
        let key = "wk_key_abc.DEF-_x";
        let e = e2b_form(key);
        assert!(e.starts_with("e2b_"));
        assert!(e[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(from_e2b_form(&e), key);
        // Not hex, or not a key: passed on as given, to fail the check.
        assert_eq!(from_e2b_form("e2b_zz"), "e2b_zz");
        assert_eq!(from_e2b_form(key), key);
    }
}

//! Which live sandbox an envd request may act on: the one its target names
//! (`E2b-Sandbox-Id` or the host name), if the request carries that
//! sandbox's access token (`X-Access-Token`).

use crate::e2b::{envd_target, token, ENVD_PORT};
use crate::manager::Live;
use crate::state::Shared;
use axum::http::HeaderMap;
use std::sync::Arc;
use warden_envd_wire::connect::{Code, Error};
use warden_store::SandboxId;

/// The SDKs recognise these words in a refusal's message: "was not found"
/// means the sandbox is gone (`SandboxNotRunningException`), "port is not
/// open" that it runs but nothing listens there.
fn gone(id: &str) -> Error {
    Error::new(Code::Unavailable, format!("The sandbox {id} was not found"))
}

pub fn sandbox(st: &Shared, headers: &HeaderMap) -> Result<Arc<Live>, Error> {
    let Some((raw_id, port)) = envd_target(headers) else {
        return Err(Error::invalid_argument(
            "no sandbox named: send E2b-Sandbox-Id or use a <port>-<sandboxID>.<domain> host",
        ));
    };
    let Some(id) = SandboxId::parse(&raw_id) else {
        return Err(gone(&raw_id));
    };
    let presented = headers
        .get("x-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if presented.is_empty() {
        return Err(Error::unauthenticated(
            "missing X-Access-Token (the envdAccessToken the control API returned)",
        ));
    }
    if !token::verify(&st.signing_key, &id, presented) {
        return Err(Error::unauthenticated(
            "invalid access token for this sandbox",
        ));
    }
    let live = st
        .sandboxes
        .get_unscoped(&id)
        .ok_or_else(|| gone(&raw_id))?;
    // Other ports never reach envd's routes (see `e2b::divert`).
    debug_assert_eq!(port, ENVD_PORT);
    Ok(live)
}

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

/// The sandbox the request names (its raw id as given, and parsed).
fn named(headers: &HeaderMap) -> Result<(String, SandboxId), Error> {
    let Some((raw_id, port)) = envd_target(headers) else {
        return Err(Error::invalid_argument(
            "no sandbox named: send E2b-Sandbox-Id or use a <port>-<sandboxID>.<domain> host",
        ));
    };
    // Other ports never reach envd's routes (see `e2b::divert`).
    debug_assert_eq!(port, ENVD_PORT);
    match SandboxId::parse(&raw_id) {
        Some(id) => Ok((raw_id, id)),
        None => Err(gone(&raw_id)),
    }
}

fn running(st: &Shared, raw_id: &str, id: &SandboxId) -> Result<Arc<Live>, Error> {
    st.sandboxes.get_unscoped(id).ok_or_else(|| gone(raw_id))
}

/// A `/files` request made with a signed URL (`download_url`,
/// `upload_url`) instead of the access token: the signature must grant
/// this very path, operation and user, and not have expired.
pub fn signed_file(
    st: &Shared,
    headers: &HeaderMap,
    grant: &token::FileGrant<'_>,
    signature: &str,
) -> Result<Arc<Live>, Error> {
    let matches =
        |id: &SandboxId| token::file_signature_matches(&st.signing_key, id, grant, signature);
    let invalid = || Error::unauthenticated("invalid signature");
    let live = if envd_target(headers).is_none() {
        // An SDK pointed at the server by E2B_SANDBOX_URL makes URLs that
        // name no sandbox: the one whose token the signature was made with
        // is the one it grants (one hash per live sandbox).
        st.sandboxes
            .all_running()
            .into_iter()
            .find(|l| matches(&l.id))
            .ok_or_else(invalid)?
    } else {
        let (raw_id, id) = named(headers)?;
        if !matches(&id) {
            return Err(invalid());
        }
        running(st, &raw_id, &id)?
    };
    // envd's words, which the SDKs' own tests read.
    if grant.expired(warden_store::now_ms() / 1000) {
        return Err(Error::unauthenticated("signature is already expired"));
    }
    Ok(live)
}

/// Resumes the sandbox a request names if it is paused, was made with
/// auto-resume, and the request carries its access token (nothing else
/// wakes a sandbox). A failed resume is logged; the request then gets the
/// answer a sandbox that is not running gets.
pub async fn wake(st: &Shared, headers: &HeaderMap) {
    let Ok((_, id)) = named(headers) else { return };
    if st.sandboxes.get_unscoped(&id).is_some() {
        return;
    }
    let presented = headers
        .get("x-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if presented.is_empty() || !token::verify(&st.signing_key, &id, presented) {
        return;
    }
    let tenant = match st.meta.sandbox_tenant(&id).await {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => return tracing::warn!(sandbox = %id, "finding a sandbox's tenant: {e}"),
    };
    let store = st.tenant_store(tenant);
    if let Err(e) = crate::service::pause::auto_resume(st, &store, "envd", &id).await {
        tracing::warn!(sandbox = %id, "resuming on traffic: {e}");
    }
}

pub fn sandbox(st: &Shared, headers: &HeaderMap) -> Result<Arc<Live>, Error> {
    let (raw_id, id) = named(headers)?;
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
    running(st, &raw_id, &id)
}

//! E2B operations Warden has no counterpart for: a clear 400 naming what
//! is missing, which both SDKs raise as an error carrying the message.
//! The caller's key is checked first, and for one sandbox's operations
//! the sandbox must be the caller's (404 otherwise, as on every route).

use super::auth::E2bCaller;
use super::error::{E2bError, E2bResult};
use super::view;
use axum::extract::Path;

async fn refuse_for(caller: &crate::auth::Caller, id: &str, why: &str) -> E2bResult<()> {
    view::record(caller, id).await?;
    Err(E2bError::unsupported(why))
}

/// `POST /sandboxes/{id}/fork`.
pub async fn fork(E2bCaller(caller): E2bCaller, Path(id): Path<String>) -> E2bResult<()> {
    refuse_for(&caller, &id, "Warden cannot fork sandboxes").await
}

/// `/templates...`: building and managing templates.
pub async fn templates(_: E2bCaller) -> E2bResult<()> {
    Err(E2bError::unsupported(
        "Warden does not build or manage templates: images are built by the operator \
         (scripts/build-image.sh) and named as templateID when creating a sandbox",
    ))
}

/// `/secrets...` (E2B's secrets; Warden's own are at /v1/secrets).
pub async fn secrets(_: E2bCaller) -> E2bResult<()> {
    Err(E2bError::unsupported(
        "E2B secrets are not supported: Warden's own secrets are at /v1/secrets \
         (warden secret set NAME) and reach sandboxes as environment variables",
    ))
}

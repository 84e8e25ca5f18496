//! E2B operations Warden has no counterpart for: a clear 400 naming what
//! is missing, which both SDKs raise as an error carrying the message.
//! The caller's key is checked first.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bResult};

/// `/templates...`: building and managing templates.
pub async fn templates(_: E2bCaller) -> E2bResult<()> {
    Err(E2bError::unsupported(
        "Warden does not build or manage E2B templates: build an image with POST /v1/images \
         (warden image build) and name it as templateID when creating a sandbox",
    ))
}

/// `/secrets...` (E2B's secrets; Warden's own are at /v1/secrets).
pub async fn secrets(_: E2bCaller) -> E2bResult<()> {
    Err(E2bError::unsupported(
        "E2B secrets are not supported: Warden's own secrets are at /v1/secrets \
         (warden secret set NAME) and reach sandboxes as environment variables",
    ))
}

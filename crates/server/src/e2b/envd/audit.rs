//! The audit entries of envd calls that change a sandbox's state (files
//! made, moved, removed; input fed to a process): names and sizes, never
//! content, whether the call worked or not.

use crate::manager::Live;
use crate::service::audit::{Action, Audit};
use crate::state::Shared;
use warden_envd_wire::connect::Error;

/// Who the audit log names for calls made with an envd access token.
pub const ACTOR: &str = "e2b-envd";

/// Records `action` on `target` (inside the sandbox) with the call's
/// outcome; `detail` (sizes, flags) goes with it. An entry that cannot be
/// written fails the call it records.
pub async fn record<T>(
    st: &Shared,
    live: &Live,
    action: Action,
    target: &str,
    detail: &str,
    result: &Result<T, Error>,
) -> Result<(), Error> {
    let how = match result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    let outcome = match detail {
        "" => format!("{how} (e2b)"),
        d => format!("{how} ({d}, e2b)"),
    };
    st.audit(
        &live.tenant,
        Audit {
            actor: ACTOR,
            action,
            target: &format!("{}:{target}", live.id),
            outcome: &outcome,
        },
    )
    .await
    .map_err(super::errors::from_api)
}

//! The audit log's entries: what was done (a closed list of actions, by the
//! names the log has always used), by whom, to what, and how it went —
//! named fields rather than four strings in a row, so that a target and an
//! outcome cannot trade places unnoticed.

use warden_store::{AuditEvent, MetaStore, StoreError, TenantId};

/// What an audit entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A sandbox was created (or refused).
    SandboxCreate,
    /// A sandbox was deleted.
    SandboxDelete,
    /// A sandbox reached its expiry and was destroyed.
    SandboxTimeout,
    /// A sandbox failed (its init died, out of memory).
    SandboxFail,
    /// A sandbox of an earlier server process was found gone at start-up.
    SandboxLost,
    /// A command was started in a sandbox.
    SandboxExec,
    /// Input was sent to a process's stdin (its size, never its content).
    SandboxStdin,
    /// A process's stdin was closed.
    SandboxStdinClose,
    /// A signal was sent to a process.
    SandboxSignal,
    /// A directory was made in a sandbox.
    SandboxMkdir,
    /// A file was written in a sandbox.
    SandboxFileWrite,
    /// A file or directory was removed in a sandbox.
    SandboxFileRemove,
    /// A file or directory was moved in a sandbox.
    SandboxFileMove,
    /// A running sandbox's egress rules were changed.
    SandboxNetworkSet,
    /// A sandbox's expiry was set.
    SandboxTimeoutSet,
    /// A sandbox was connected to (E2B), extending its expiry.
    SandboxConnect,
    /// A sandbox's expiry was refreshed (E2B).
    SandboxRefresh,
    /// The command policy refused a sandbox's command.
    ExecDenied,
    /// The command policy refused a review's command.
    ReviewDenied,
    /// A review job was submitted (or refused).
    ReviewSubmit,
    /// A review job was cancelled.
    ReviewCancel,
    /// A review job was put back in the queue.
    ReviewRetry,
    /// A review job ended.
    ReviewFinish,
    /// A review job's outputs and log were deleted.
    ReviewDeleteOutputs,
    /// A file was uploaded (or refused).
    FileUpload,
    /// A signed upload URL was issued.
    FileUploadUrl,
    /// A file was deleted.
    FileDelete,
    /// An API key was created.
    KeyCreate,
    /// An API key was revoked.
    KeyRevoke,
    /// A secret was created.
    SecretCreate,
    /// A secret's value was replaced.
    SecretReplace,
    /// A secret was deleted.
    SecretDelete,
    /// A volume was created (or refused).
    VolumeCreate,
    /// A volume was deleted.
    VolumeDelete,
    /// A snapshot of a sandbox was taken (or refused).
    SnapshotCreate,
    /// A snapshot was deleted.
    SnapshotDelete,
    /// An image was built (or the build failed).
    ImageBuild,
    /// An image was deleted.
    ImageDelete,
    /// A sandbox was paused (or a pause refused).
    SandboxPause,
    /// A paused sandbox was resumed (or a resume refused).
    SandboxResume,
    /// A schedule was created (or refused).
    ScheduleCreate,
    /// A schedule was deleted.
    ScheduleDelete,
    /// A schedule was paused.
    SchedulePause,
    /// A schedule was resumed.
    ScheduleResume,
    /// A tenant was created.
    TenantCreate,
    /// A tenant was deleted.
    TenantDelete,
    /// A tenant was disabled.
    TenantDisable,
    /// A tenant was enabled again.
    TenantEnable,
    /// A tenant's upload policy was set.
    TenantUploadPolicy,
    /// A tenant's command policy was set.
    TenantCommandPolicy,
}

impl Action {
    /// Every action, for documentation and tests.
    pub const ALL: &'static [Action] = &[
        Action::SandboxCreate,
        Action::SandboxDelete,
        Action::SandboxTimeout,
        Action::SandboxFail,
        Action::SandboxLost,
        Action::SandboxExec,
        Action::SandboxStdin,
        Action::SandboxStdinClose,
        Action::SandboxSignal,
        Action::SandboxMkdir,
        Action::SandboxFileWrite,
        Action::SandboxFileRemove,
        Action::SandboxFileMove,
        Action::SandboxNetworkSet,
        Action::SandboxTimeoutSet,
        Action::SandboxConnect,
        Action::SandboxRefresh,
        Action::ExecDenied,
        Action::ReviewDenied,
        Action::ReviewSubmit,
        Action::ReviewCancel,
        Action::ReviewRetry,
        Action::ReviewFinish,
        Action::ReviewDeleteOutputs,
        Action::FileUpload,
        Action::FileUploadUrl,
        Action::FileDelete,
        Action::KeyCreate,
        Action::KeyRevoke,
        Action::SecretCreate,
        Action::SecretReplace,
        Action::SecretDelete,
        Action::VolumeCreate,
        Action::VolumeDelete,
        Action::SnapshotCreate,
        Action::SnapshotDelete,
        Action::ImageBuild,
        Action::ImageDelete,
        Action::SandboxPause,
        Action::SandboxResume,
        Action::ScheduleCreate,
        Action::ScheduleDelete,
        Action::SchedulePause,
        Action::ScheduleResume,
        Action::TenantCreate,
        Action::TenantDelete,
        Action::TenantDisable,
        Action::TenantEnable,
        Action::TenantUploadPolicy,
        Action::TenantCommandPolicy,
    ];

    /// The name the audit log shows (`GET /v1/audit`'s `action`).
    pub fn name(self) -> &'static str {
        match self {
            Action::SandboxCreate => "sandbox.create",
            Action::SandboxDelete => "sandbox.delete",
            Action::SandboxTimeout => "sandbox.timeout",
            Action::SandboxFail => "sandbox.fail",
            Action::SandboxLost => "sandbox.lost",
            Action::SandboxExec => "sandbox.exec",
            Action::SandboxStdin => "sandbox.stdin",
            Action::SandboxStdinClose => "sandbox.stdin_close",
            Action::SandboxSignal => "sandbox.signal",
            Action::SandboxMkdir => "sandbox.mkdir",
            Action::SandboxFileWrite => "sandbox.file_write",
            Action::SandboxFileRemove => "sandbox.file_remove",
            Action::SandboxFileMove => "sandbox.file_move",
            Action::SandboxNetworkSet => "sandbox.network_set",
            Action::SandboxTimeoutSet => "sandbox.timeout_set",
            Action::SandboxConnect => "sandbox.connect",
            Action::SandboxRefresh => "sandbox.refresh",
            Action::ExecDenied => "exec.denied",
            Action::ReviewDenied => "review.denied",
            Action::ReviewSubmit => "review.submit",
            Action::ReviewCancel => "review.cancel",
            Action::ReviewRetry => "review.retry",
            Action::ReviewFinish => "review.finish",
            Action::ReviewDeleteOutputs => "review.delete_outputs",
            Action::FileUpload => "file.upload",
            Action::FileUploadUrl => "file.upload_url",
            Action::FileDelete => "file.delete",
            Action::KeyCreate => "key.create",
            Action::KeyRevoke => "key.revoke",
            Action::SecretCreate => "secret.create",
            Action::SecretReplace => "secret.replace",
            Action::SecretDelete => "secret.delete",
            Action::VolumeCreate => "volume.create",
            Action::VolumeDelete => "volume.delete",
            Action::SandboxPause => "sandbox.pause",
            Action::SandboxResume => "sandbox.resume",
            Action::SnapshotCreate => "snapshot.create",
            Action::SnapshotDelete => "snapshot.delete",
            Action::ImageBuild => "image.build",
            Action::ImageDelete => "image.delete",
            Action::ScheduleCreate => "schedule.create",
            Action::ScheduleDelete => "schedule.delete",
            Action::SchedulePause => "schedule.pause",
            Action::ScheduleResume => "schedule.resume",
            Action::TenantCreate => "tenant.create",
            Action::TenantDelete => "tenant.delete",
            Action::TenantDisable => "tenant.disable",
            Action::TenantEnable => "tenant.enable",
            Action::TenantUploadPolicy => "tenant.upload_policy",
            Action::TenantCommandPolicy => "tenant.command_policy",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry about to be appended to a tenant's audit chain.
#[derive(Clone, Copy, Debug)]
pub struct Audit<'a> {
    /// Who: `key:<id>`, `admin`, `system`, `e2b`, ...
    pub actor: &'a str,
    pub action: Action,
    /// What it was done to: an id, a name, a path.
    pub target: &'a str,
    /// How it went: `ok`, an error code, a reason.
    pub outcome: &'a str,
}

/// Appends `entry` to `tenant`'s audit chain. A failure is logged and
/// returned: callers answering a request fail it; background work (which
/// has no one to answer) logs it.
pub async fn append(
    meta: &dyn MetaStore,
    tenant: &TenantId,
    entry: Audit<'_>,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        actor: entry.actor.into(),
        action: entry.action.name().into(),
        target: entry.target.into(),
        outcome: entry.outcome.into(),
    };
    match meta.append_audit(tenant, &event).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(%tenant, action = %entry.action, target = entry.target, "audit append failed: {e}");
            Err(e)
        }
    }
}

/// Appends what `caller` did to its tenant's chain (see [`append`]).
pub async fn by_caller(
    st: &crate::state::AppState,
    caller: &crate::auth::Caller,
    action: Action,
    target: &str,
    outcome: &str,
) -> Result<(), StoreError> {
    let entry = Audit {
        actor: caller.actor(),
        action,
        target,
        outcome,
    };
    append(st.meta.as_ref(), caller.store.tenant_id(), entry).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are unique and shaped `noun.verb`, as the log has always had.
    #[test]
    fn every_action_has_its_own_dotted_name() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            let name = a.name();
            assert!(seen.insert(name), "{name} twice");
            let (noun, verb) = name.split_once('.').expect("dotted");
            assert!(!noun.is_empty() && !verb.is_empty(), "{name}");
        }
    }

    /// docs/api.md lists every action a client may find in the log.
    #[test]
    fn the_api_docs_list_every_action() {
        let docs = include_str!("../../../../docs/api.md");
        for a in Action::ALL {
            assert!(
                docs.contains(&format!("`{}`", a.name())),
                "{a} is not in docs/api.md"
            );
        }
    }
}

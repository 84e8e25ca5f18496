//! What a use case answers when it does not succeed: kinds, not statuses.
//! Each front door decides what a kind means to its client (`/v1` in
//! `crate::error`, the E2B front door through that, the job worker by
//! whether waiting or retrying can help).

use crate::secrets::SecretError;
use std::fmt::Display;
use warden_protocol::{ClientError, ErrorKind};
use warden_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong as it stands: the caller must change it.
    #[error("{0}")]
    Invalid(String),
    /// No such thing of this tenant (also what another tenant's looks like,
    /// so ids cannot be probed).
    #[error("{0} not found")]
    NotFound(String),
    /// It exists, but is not in a state for this.
    #[error("{0}")]
    Conflict(String),
    /// Past one of the tenant's quotas: passes as the tenant's other work
    /// ends.
    #[error("{0}")]
    Quota(String),
    /// This node has no room (sandbox slots, file descriptors) right now:
    /// nobody's fault, passes.
    #[error("{0}")]
    Capacity(String),
    /// The server is shutting down.
    #[error("{0}")]
    ShuttingDown(String),
    /// The isolation tier asked for is not offered by this server.
    #[error("{0}")]
    IsolationUnavailable(String),
    /// The tenant's command policy refuses the command (the reason).
    #[error("command denied by policy: {0}")]
    Denied(String),
    /// The command policy could not be checked (its hook failed): the
    /// command is refused, and the failure is Warden's.
    #[error("the command policy could not be checked ({0}); the command was not run")]
    PolicyUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// What the sandbox's init answered (a missing path, a full disk, ...)
    /// or that it could not be reached.
    #[error(transparent)]
    Sandbox(#[from] ClientError),
    /// A failure of Warden's own, logged in full when it is made; callers
    /// are told only which step failed.
    #[error("{context} failed")]
    Internal { context: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(m: impl Into<String>) -> Error {
        Error::Invalid(m.into())
    }

    pub fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound(what.into())
    }

    pub fn conflict(m: impl Into<String>) -> Error {
        Error::Conflict(m.into())
    }

    /// Logs the failure in full and keeps only the step that failed.
    pub fn internal(context: &str, e: impl Display) -> Error {
        tracing::error!("{context}: {e}");
        Error::Internal {
            context: context.to_string(),
        }
    }

    /// The error's stable name, as answers and audit outcomes carry it
    /// (`quota_exceeded`, `capacity`, `isolation_unavailable`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "bad_request",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Quota(_) => "quota_exceeded",
            Error::Capacity(_) => "capacity",
            Error::ShuttingDown(_) => "unavailable",
            Error::IsolationUnavailable(_) => "isolation_unavailable",
            Error::Denied(_) => "command_denied",
            Error::PolicyUnavailable(_) => "policy_unavailable",
            Error::Store(e) => store_code(e),
            Error::Secret(e) => secret_code(e),
            Error::Sandbox(e) => sandbox_code(e),
            Error::Internal { .. } => "internal",
        }
    }

    /// Whether the same request may succeed later as it is, once other
    /// work ends (quotas, the node's capacity): a queued job waits for it
    /// instead of failing.
    pub fn passes(&self) -> bool {
        matches!(self, Error::Quota(_) | Error::Capacity(_))
    }

    /// Whether the failure is Warden's own (storage, an internal step, a
    /// server shutting down), which a retry may get past, rather than the
    /// request's.
    pub fn is_ours(&self) -> bool {
        match self {
            Error::Internal { .. } | Error::ShuttingDown(_) | Error::PolicyUnavailable(_) => true,
            Error::Store(e) | Error::Secret(SecretError::Store(e)) => store_is_ours(e),
            Error::Secret(SecretError::Disabled | SecretError::Undecryptable(_)) => true,
            Error::Sandbox(ClientError::Remote(r)) => r.kind == ErrorKind::Io,
            Error::Sandbox(ClientError::Disconnected) => false,
            Error::Sandbox(_) => true,
            _ => false,
        }
    }
}

/// Whether a store error is the store's failure rather than the request's
/// (a quota, a size, a name taken or missing).
fn store_is_ours(e: &StoreError) -> bool {
    !matches!(
        e,
        StoreError::StorageQuota { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Upload(_)
            | StoreError::Conflict(_)
            | StoreError::NotFound(_)
    )
}

/// The code of a storage error: the one table of them, used by the audit
/// outcome of a service call and by the HTTP mapping (`crate::error`),
/// which picks only the status.
pub(crate) fn store_code(e: &StoreError) -> &'static str {
    match e {
        e if e.is_storage_full() => "storage_full",
        StoreError::StorageQuota { .. } | StoreError::TooLarge { .. } => "payload_too_large",
        StoreError::Upload(_) => "bad_request",
        StoreError::Conflict(_) => "conflict",
        StoreError::NotFound(_) => "not_found",
        _ => "internal",
    }
}

/// The code of a secret's error (likewise the one table).
pub(crate) fn secret_code(e: &SecretError) -> &'static str {
    match e {
        SecretError::Disabled => "secrets_disabled",
        SecretError::NotFound(_) => "secret_not_found",
        SecretError::Undecryptable(_) => "secret_undecryptable",
        SecretError::Invalid(_) => "bad_request",
        SecretError::Store(e) => store_code(e),
    }
}

/// The names of what an init answers, as `/v1` has always given them
/// (likewise the one table).
pub(crate) fn sandbox_code(e: &ClientError) -> &'static str {
    match e {
        ClientError::Remote(r) => match r.kind {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::DirectoryNotEmpty => "directory_not_empty",
            ErrorKind::NotADirectory => "not_a_directory",
            ErrorKind::IsADirectory => "is_a_directory",
            ErrorKind::NoSpace => "no_space",
            ErrorKind::TooLarge => "payload_too_large",
            ErrorKind::BadRequest | ErrorKind::Unsupported => "bad_request",
            ErrorKind::Io => "io_error",
        },
        ClientError::Disconnected => "conflict",
        _ => "internal",
    }
}

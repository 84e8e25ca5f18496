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
    /// Not this caller's to do (a signed upload URL forged, expired, used
    /// or of a tenant gone).
    #[error("{0}")]
    Forbidden(String),
    /// Larger than a limit allows (the limit named in the message).
    #[error("{0}")]
    TooLarge(String),
    /// An upload the checks refused (see `crate::checks`): why, in a word
    /// and in full.
    #[error("{message}")]
    Refused {
        why: Refusal,
        /// The detail an audit entry records (`pdf`, the zip limit, the
        /// scanner's line); may be empty.
        detail: String,
        message: String,
    },
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

/// Why the upload checks refused a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    EmptyFile,
    TypeNotAllowed,
    ArchiveRejected,
    MalwareDetected,
    /// The scanner failed and the server is fail-closed.
    ScannerUnavailable,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::EmptyFile => "empty_file",
            Refusal::TypeNotAllowed => "type_not_allowed",
            Refusal::ArchiveRejected => "archive_rejected",
            Refusal::MalwareDetected => "malware_detected",
            Refusal::ScannerUnavailable => "scanner_unavailable",
        }
    }
}

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
            Error::Forbidden(_) => "forbidden",
            Error::TooLarge(_) => "payload_too_large",
            Error::Refused { why, .. } => why.code(),
            Error::Store(e) => store_code(e),
            Error::Secret(e) => secret_code(e),
            Error::Sandbox(e) => sandbox_code(e),
            Error::Internal { .. } => "internal",
        }
    }

    /// What the caller is told, whoever the caller is (an HTTP client, a
    /// review job's record): the error's own text for the request's
    /// errors; for a failure of Warden's own only the step that failed,
    /// logged in full here.
    pub fn into_message(self) -> String {
        match self {
            Error::Store(e) => store_message(e),
            Error::Secret(e) => secret_message(e),
            Error::Sandbox(e) => sandbox_message(e),
            own => own.to_string(),
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
            Error::Refused { why, .. } => *why == Refusal::ScannerUnavailable,
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

/// What a storage error tells the caller (the full error of a failure of
/// the store's own is logged, not told).
pub(crate) fn store_message(e: StoreError) -> String {
    if e.is_storage_full() {
        tracing::error!("storage full: {e}");
        return "the server's storage is full (no space left on its data disk); try again later"
            .into();
    }
    match e {
        e @ StoreError::StorageQuota { .. } => e.to_string(),
        StoreError::TooLarge { limit } => format!("the body is larger than {limit} bytes"),
        StoreError::Upload(m) => format!("upload interrupted: {m}"),
        StoreError::Conflict(m) => format!("{m} already exists"),
        StoreError::NotFound(m) => format!("{m} not found"),
        other => {
            tracing::error!("storage: {other}");
            "storage failed".into()
        }
    }
}

/// What a secret's error tells the caller.
pub(crate) fn secret_message(e: SecretError) -> String {
    match e {
        SecretError::Disabled => "secrets are disabled on this server: the operator must set \
             WARDEN_SECRETS_KEY (or `key` in [secrets]) to 32 random bytes as hex or base64, \
             e.g. `openssl rand -hex 32`"
            .into(),
        SecretError::NotFound(n) => format!("secret {n:?} not found"),
        SecretError::Undecryptable(n) => {
            tracing::error!(secret = %n, "a stored secret does not decrypt: wrong key?");
            format!(
                "secret {n:?} cannot be decrypted with this server's key \
                 (was WARDEN_SECRETS_KEY changed?); set it again"
            )
        }
        SecretError::Invalid(m) => m,
        SecretError::Store(e) => store_message(e),
    }
}

/// What an init's answer (or its absence) tells the caller.
pub(crate) fn sandbox_message(e: ClientError) -> String {
    match e {
        ClientError::Remote(r) => r.message,
        ClientError::Disconnected => "the sandbox ended while the request was in flight".into(),
        e => {
            tracing::error!("talking to the sandbox: {e}");
            "talking to the sandbox failed".into()
        }
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
            ErrorKind::Refused => "port_not_open",
        },
        ClientError::Disconnected => "conflict",
        _ => "internal",
    }
}

//! The one error shape of the API: `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use warden_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `payload_too_large`, `quota_exceeded`,
    /// `storage_full`, ...
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }

    pub fn unauthorized(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }

    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
    }

    /// Also what another tenant's resource looks like: ids cannot be probed.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", m)
    }

    pub fn too_large(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m)
    }

    /// A failure of Warden's own: logged in full, answered without detail
    /// beyond one line.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!("{context}: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed"),
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::metrics::error(self.code);
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// The status of a storage error; its code and message are the service
/// layer's (`service::error`).
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        use crate::service::error::{store_code, store_message};
        let status = match &e {
            e if e.is_storage_full() => StatusCode::INSUFFICIENT_STORAGE,
            StoreError::StorageQuota { .. } | StoreError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            StoreError::Upload(_) => StatusCode::BAD_REQUEST,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, store_code(&e), store_message(e))
    }
}

/// The status of a secret's error; its code and message are the service
/// layer's.
impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> ApiError {
        use crate::secrets::SecretError;
        use crate::service::error::{secret_code, secret_message};
        match e {
            SecretError::Store(e) => e.into(),
            e => {
                let status = match &e {
                    SecretError::Disabled => StatusCode::SERVICE_UNAVAILABLE,
                    SecretError::NotFound(_) | SecretError::Invalid(_) => StatusCode::BAD_REQUEST,
                    SecretError::Undecryptable(_) | SecretError::Store(_) => {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                };
                ApiError::new(status, secret_code(&e), secret_message(e))
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Turns axum's own rejections (bad JSON, wrong content type, body limit)
/// into the API's error shape.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (code, fallback) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "bad request"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("bad_request", "invalid request body"),
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "bad request"),
    };
    // axum's rejection text says what was wrong with the body; keep it.
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() {
        fallback.to_string()
    } else {
        text
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let err = ApiError::new(status, code, message);
    (status, axum::Json(err.body())).into_response()
}

/// Most of an oversized body read and thrown away before answering 413, so
/// the client, still sending, reads the answer instead of a reset.
const DRAIN_CAP: u64 = 64 << 20;

/// Refuses a body whose declared length is over `limit` with a clean 413
/// (for the JSON routes; the streaming routes check as they go).
pub async fn refuse_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            if n <= DRAIN_CAP {
                drain(req.into_body()).await;
            }
            ApiError::too_large(format!("the request body is larger than {limit} bytes"))
                .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Reads and discards a body (up to [`DRAIN_CAP`]).
pub async fn drain(body: axum::body::Body) {
    use futures::StreamExt;
    let mut s = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = s.next().await {
        seen += chunk.len() as u64;
        if seen > DRAIN_CAP {
            break;
        }
    }
}

/// The status of an init's answer for an HTTP client; its code and
/// message are the service layer's.
pub fn init_error(e: warden_protocol::ClientError) -> ApiError {
    use crate::service::error::{sandbox_code, sandbox_message};
    use warden_protocol::{ClientError, ErrorKind};
    let status = match &e {
        ClientError::Remote(r) => match r.kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty => StatusCode::CONFLICT,
            ErrorKind::NotADirectory
            | ErrorKind::IsADirectory
            | ErrorKind::BadRequest
            | ErrorKind::Unsupported => StatusCode::BAD_REQUEST,
            ErrorKind::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Io => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Refused => StatusCode::BAD_GATEWAY,
        },
        ClientError::Disconnected => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, sandbox_code(&e), sandbox_message(e))
}

/// What a service's answer means to an HTTP client: the one place its
/// kinds become statuses.
impl From<crate::service::Error> for ApiError {
    fn from(e: crate::service::Error) -> ApiError {
        use crate::service::error::Refusal;
        use crate::service::Error as E;
        // A lower layer's error is mapped as that layer's always was.
        let e = match e {
            E::Store(e) => return e.into(),
            E::Secret(e) => return e.into(),
            E::Sandbox(e) => return init_error(e),
            own => own,
        };
        let status = match &e {
            E::Invalid(_) | E::IsolationUnavailable(_) => StatusCode::BAD_REQUEST,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Quota(_) => StatusCode::TOO_MANY_REQUESTS,
            E::Denied(_) => StatusCode::FORBIDDEN,
            E::PolicyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Capacity(_) | E::ShuttingDown(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Forbidden(_) => StatusCode::FORBIDDEN,
            E::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            E::Refused { why, .. } => match why {
                Refusal::TypeNotAllowed => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Refusal::ScannerUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::EmptyFile | Refusal::ArchiveRejected | Refusal::MalwareDetected => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
            },
            // Logged when it was made.
            E::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            E::Store(_) | E::Secret(_) | E::Sandbox(_) => unreachable!("mapped above"),
        };
        ApiError::new(status, e.code(), e.into_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Error as E;

    /// Each kind of a service's answer keeps the status and code clients
    /// (and audit outcomes) have always seen for it.
    #[test]
    fn service_kinds_become_statuses_only_here() {
        let cases = [
            (E::invalid("x"), 400, "bad_request"),
            (E::not_found("sandbox"), 404, "not_found"),
            (E::conflict("x"), 409, "conflict"),
            (E::Quota("x".into()), 429, "quota_exceeded"),
            (E::Capacity("x".into()), 503, "capacity"),
            (E::ShuttingDown("x".into()), 503, "unavailable"),
            (
                E::IsolationUnavailable("x".into()),
                400,
                "isolation_unavailable",
            ),
            (E::internal("starting a sandbox", "boom"), 500, "internal"),
            (E::Denied("rm".into()), 403, "command_denied"),
            (
                E::PolicyUnavailable("hook".into()),
                503,
                "policy_unavailable",
            ),
            (
                E::Store(StoreError::NotFound("file".into())),
                404,
                "not_found",
            ),
            (
                E::Secret(crate::secrets::SecretError::NotFound("K".into())),
                400,
                "secret_not_found",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.code(), code, "{e:?}");
            let text = e.to_string();
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code), "{text}");
            assert_eq!(api.message, text);
        }
    }

    /// A lower layer's error has one code whichever way it is reported:
    /// wrapped in a service's answer (what audit outcomes record) or
    /// mapped to HTTP directly.
    #[test]
    fn a_lower_layers_error_has_one_code_either_way() {
        use crate::secrets::SecretError;
        use warden_protocol::{ClientError, ErrorKind, ErrorReply};
        let init = |kind| {
            ClientError::Remote(ErrorReply {
                kind,
                message: "m".into(),
            })
        };
        let stores = || {
            vec![
                StoreError::NotFound("file".into()),
                StoreError::Conflict("name".into()),
                StoreError::TooLarge { limit: 1 },
                StoreError::Upload("cut".into()),
            ]
        };
        for i in 0..stores().len() {
            let code = E::Store(stores().remove(i)).code();
            assert_eq!(ApiError::from(stores().remove(i)).code, code);
        }
        for (e, status) in [
            (init(ErrorKind::NoSpace), 507),
            (init(ErrorKind::NotFound), 404),
            (init(ErrorKind::DirectoryNotEmpty), 409),
            (ClientError::Disconnected, 409),
        ] {
            let code = E::Sandbox(clone_client(&e)).code();
            let api = init_error(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
        for e in [SecretError::Disabled, SecretError::Invalid("x".into())] {
            let code = crate::service::error::secret_code(&e);
            assert_eq!(ApiError::from(e).code, code);
        }
    }

    fn clone_client(e: &warden_protocol::ClientError) -> warden_protocol::ClientError {
        use warden_protocol::{ClientError, ErrorReply};
        match e {
            ClientError::Remote(r) => ClientError::Remote(ErrorReply {
                kind: r.kind,
                message: r.message.clone(),
            }),
            _ => ClientError::Disconnected,
        }
    }
}

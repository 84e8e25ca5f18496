//! What the init's and the service layer's errors are in Connect's terms.

use crate::error::ApiError;
use axum::http::StatusCode;
use warden_envd_wire::connect::{Code, Error};
use warden_protocol::{ClientError, ErrorKind};

pub fn from_client(e: ClientError) -> Error {
    match e {
        ClientError::Remote(r) => {
            let code = match r.kind {
                ErrorKind::NotFound => Code::NotFound,
                ErrorKind::PermissionDenied => Code::PermissionDenied,
                ErrorKind::AlreadyExists => Code::AlreadyExists,
                ErrorKind::NotADirectory | ErrorKind::IsADirectory | ErrorKind::BadRequest => {
                    Code::InvalidArgument
                }
                ErrorKind::DirectoryNotEmpty => Code::FailedPrecondition,
                ErrorKind::NoSpace | ErrorKind::TooLarge => Code::ResourceExhausted,
                ErrorKind::Unsupported => Code::Unimplemented,
                ErrorKind::Io => Code::Internal,
                ErrorKind::Refused => Code::Unavailable,
            };
            Error::new(code, r.message)
        }
        ClientError::Disconnected => {
            Error::unavailable("the sandbox ended while the request was in flight")
        }
        other => Error::internal(format!("talking to the sandbox: {other}")),
    }
}

/// The service layer's refusals (command policy, quotas...).
pub fn from_api(e: ApiError) -> Error {
    let code = match e.status {
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::FailedPrecondition,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::INSUFFICIENT_STORAGE => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Internal,
    };
    Error::new(code, e.message)
}

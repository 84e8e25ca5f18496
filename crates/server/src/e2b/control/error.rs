//! E2B's error shape, `{"code": <HTTP status>, "message": "..."}` with that
//! status: the SDKs read `message` (and the JS SDK also `code`) to build the
//! exception they raise.

use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug)]
pub struct E2bError {
    pub status: StatusCode,
    /// The native code (`bad_request`, `not_found`...), for metrics.
    pub code: &'static str,
    pub message: String,
}

pub type E2bResult<T> = Result<T, E2bError>;

#[derive(Serialize)]
struct Body<'a> {
    code: u16,
    message: &'a str,
}

impl E2bError {
    pub fn bad_request(m: impl Into<String>) -> E2bError {
        ApiError::bad_request(m).into()
    }

    pub fn not_found(m: impl Into<String>) -> E2bError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", m).into()
    }

    pub fn conflict(m: impl Into<String>) -> E2bError {
        ApiError::new(StatusCode::CONFLICT, "conflict", m).into()
    }

    /// What Warden cannot do at all: 400 with the reason, which both SDKs
    /// raise as an error carrying the message (as the native API answers
    /// an unsupported request). Not 409, which the SDKs read from pause as
    /// "already paused", and not 501, which the server would log as its
    /// own failure.
    pub fn unsupported(m: impl Into<String>) -> E2bError {
        ApiError::new(StatusCode::BAD_REQUEST, "not_supported", m).into()
    }
}

impl From<ApiError> for E2bError {
    fn from(e: ApiError) -> E2bError {
        E2bError {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }
}

impl From<crate::service::Error> for E2bError {
    fn from(e: crate::service::Error) -> E2bError {
        ApiError::from(e).into()
    }
}

impl From<warden_store::StoreError> for E2bError {
    fn from(e: warden_store::StoreError) -> E2bError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for E2bError {
    fn into_response(self) -> Response {
        crate::metrics::error(self.code);
        let body = Body {
            code: self.status.as_u16(),
            message: &self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON body whose rejection (not JSON, wrong types) answers in E2B's
/// shape, with serde's description of what was wrong.
pub struct E2bJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for E2bJson<T> {
    type Rejection = E2bError;

    async fn from_request(req: Request, state: &S) -> Result<Self, E2bError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(E2bJson(v)),
            Err(rejection) => {
                let status = match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    s => s,
                };
                Err(ApiError::new(status, "bad_request", rejection.body_text()).into())
            }
        }
    }
}

//! The MCP tools are a client of `/v1`: each tool is written once against
//! the API's HTTP shapes, so a tool call is authenticated, audited, judged
//! by the command policy and charged to quotas exactly as the same request
//! from any other client. At `/mcp` the calls go through the server's own
//! router in process ([`InProcess`]); `warden mcp` sends them to a server
//! over HTTP (the CLI's implementation of [`V1`]).

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use tower::ServiceExt;

/// One request to `/v1`.
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/v1/sandboxes/sb_…/files?path=%2Ftmp`.
    pub path: String,
    /// The body and its content type.
    pub body: Option<(&'static str, Bytes)>,
    /// An `Accept` header (`text/event-stream` for a streamed exec).
    pub accept: Option<&'static str>,
}

impl Call {
    pub fn new(method: Method, path: String) -> Call {
        Call {
            method,
            path,
            body: None,
            accept: None,
        }
    }

    pub fn get(path: String) -> Call {
        Call::new(Method::GET, path)
    }

    pub fn json(method: Method, path: String, body: &Value) -> Call {
        Call::new(method, path).with_body("application/json", Bytes::from(body.to_string()))
    }

    pub fn with_body(mut self, content_type: &'static str, body: Bytes) -> Call {
        self.body = Some((content_type, body));
        self
    }
}

/// An answer whose body is still to be read.
pub struct Opened {
    pub status: StatusCode,
    pub body: BoxStream<'static, Result<Bytes, V1Error>>,
}

/// What `/v1` answered: at most the bytes the caller asked to read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    /// The body went on past what was read.
    pub cut: bool,
}

/// Why a call gave no usable answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum V1Error {
    /// The server could not be reached or the answer not read.
    #[error("the Warden server could not be reached: {0}")]
    Transport(String),
    /// The API refused: its error code and message.
    #[error("{code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
}

/// A way to send `/v1` requests with one tenant's credential.
pub trait V1: Send + Sync {
    /// Sends `call`; the answer's body is read as it comes.
    fn open(&self, call: Call) -> BoxFuture<'_, Result<Opened, V1Error>>;

    /// Sends `call` and reads at most `max_body` bytes of the answer (the
    /// rest is not read: the stream is dropped there).
    fn send(&self, call: Call, max_body: usize) -> BoxFuture<'_, Result<Reply, V1Error>> {
        Box::pin(async move {
            let mut opened = self.open(call).await?;
            let mut buf = BytesMut::new();
            while let Some(data) = opened.body.next().await {
                let data = data?;
                let room = max_body - buf.len();
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    return Ok(Reply {
                        status: opened.status,
                        body: buf.freeze(),
                        cut: true,
                    });
                }
                buf.extend_from_slice(&data);
            }
            Ok(Reply {
                status: opened.status,
                body: buf.freeze(),
                cut: false,
            })
        })
    }
}

/// A `/v1` call whose success answer is JSON: the value, or the API's error.
pub async fn json(v1: &dyn V1, call: Call, max_body: usize) -> Result<Value, V1Error> {
    v1.send(call, max_body).await?.ok()?.json()
}

impl Reply {
    /// The answer if it is a success, else the API's error.
    pub fn ok(self) -> Result<Reply, V1Error> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(api_error(self.status, &self.body))
        }
    }

    pub fn json(&self) -> Result<Value, V1Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            V1Error::Transport(format!("the server's answer is not the JSON expected: {e}"))
        })
    }
}

/// The API's `{"error": {"code", "message"}}`, or the status's reason.
pub fn api_error(status: StatusCode, body: &[u8]) -> V1Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error"]["code"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_")
        });
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    V1Error::Api {
        status: status.as_u16(),
        code,
        message,
    }
}

/// `/v1` through the server's own router, with the bearer credential the
/// MCP request came with (checked again by the route, as any request).
pub struct InProcess {
    pub app: axum::Router,
    pub auth: HeaderValue,
}

impl V1 for InProcess {
    fn open(&self, call: Call) -> BoxFuture<'_, Result<Opened, V1Error>> {
        Box::pin(async move {
            let mut req = Request::builder()
                .method(call.method)
                .uri(&call.path)
                .header(header::AUTHORIZATION, self.auth.clone());
            if let Some(accept) = call.accept {
                req = req.header(header::ACCEPT, accept);
            }
            let body = match call.body {
                Some((ct, bytes)) => {
                    req = req
                        .header(header::CONTENT_TYPE, ct)
                        .header(header::CONTENT_LENGTH, bytes.len());
                    Body::from(bytes)
                }
                None => Body::empty(),
            };
            let req = req
                .body(body)
                .map_err(|e| V1Error::Transport(format!("building the request: {e}")))?;
            let resp = match self.app.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = resp.status();
            let body = resp
                .into_body()
                .into_data_stream()
                .map(|r| r.map_err(|e| V1Error::Transport(format!("reading the answer: {e}"))))
                .boxed();
            Ok(Opened { status, body })
        })
    }
}

/// A path segment, percent-encoded (ids and names from a model are not
/// trusted to be URL-safe).
pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

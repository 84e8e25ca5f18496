//! Connect RPC over axum: reading a call (codec, shape, deadline, message),
//! and answering it, unary (bare body, errors as JSON with the code's HTTP
//! status) or server-streaming (envelopes fed by a task, then the
//! end-of-stream message).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use warden_envd_wire::connect::{self, Codec, Error, Shape};
use warden_envd_wire::prost::Message;

/// One incoming call.
pub struct Call {
    pub codec: Codec,
    pub shape: Shape,
    body: Bytes,
    /// From `connect-timeout-ms`.
    pub deadline: Option<Instant>,
}

impl Call {
    pub fn parse(headers: &HeaderMap, body: Bytes) -> Result<Call, Error> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (codec, shape) = Codec::from_content_type(ct).ok_or_else(|| {
            Error::invalid_argument(format!(
                "unsupported content type {ct:?}: expected application/json, application/proto \
                 or their application/connect+ forms"
            ))
        })?;
        if let Some(v) = headers
            .get("content-encoding")
            .or(headers.get("connect-content-encoding"))
        {
            if v.as_bytes() != b"identity" {
                return Err(Error::unimplemented(
                    "compressed requests are not supported; send them uncompressed",
                ));
            }
        }
        let deadline = match headers.get("connect-timeout-ms") {
            None => None,
            Some(v) => {
                let ms = v
                    .to_str()
                    .ok()
                    .and_then(connect::parse_timeout_ms)
                    .ok_or_else(|| Error::invalid_argument("malformed connect-timeout-ms"))?;
                Some(Instant::now() + Duration::from_millis(ms))
            }
        };
        Ok(Call {
            codec,
            shape,
            body,
            deadline,
        })
    }

    /// The request message, for a method of the given shape.
    pub fn message<T>(&self, method_shape: Shape) -> Result<T, Error>
    where
        T: Message + Default + DeserializeOwned,
    {
        if self.shape != method_shape {
            return Err(Error::invalid_argument(match method_shape {
                Shape::Unary => "this method is unary: use application/json or application/proto",
                Shape::Stream => {
                    "this method streams: use application/connect+json or application/connect+proto"
                }
            }));
        }
        match self.shape {
            Shape::Unary => self.codec.decode(&self.body),
            Shape::Stream => self.codec.decode(connect::single_message(&self.body)?),
        }
    }

    pub fn unary<T: Message + Serialize>(&self, msg: &T) -> Response {
        let mut resp = Body::from(self.codec.encode(msg)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.codec.content_type(Shape::Unary)),
        );
        resp
    }

    /// A stream answered by `task`, which sends messages through the sink
    /// and ends the stream by returning (or failing it with `Sink::fail`).
    pub fn stream<F, Fut>(&self, task: F) -> Response
    where
        F: FnOnce(Sink) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        // A few messages of slack; beyond that the task waits for the
        // client to read (backpressure reaches the init through credits).
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(task(Sink {
            tx,
            codec: self.codec,
            deadline: self.deadline,
        }));
        let body = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
            if done {
                return None;
            }
            let chunk = match rx.recv().await {
                Some(Item::Message(msg)) => {
                    return Some((
                        Ok::<_, std::io::Error>(connect::envelope(0, &msg)),
                        (rx, false),
                    ))
                }
                Some(Item::Fail(e)) => connect::end_stream(Some(&e)),
                // An error aborts the response mid-body.
                Some(Item::Cut) => {
                    let gone = std::io::Error::other("the sandbox ended mid-stream");
                    return Some((Err(gone), (rx, true)));
                }
                None => connect::end_stream(None),
            };
            Some((Ok(chunk), (rx, true)))
        });
        let mut resp = Body::from_stream(body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.codec.content_type(Shape::Stream)),
        );
        resp
    }
}

/// What a streaming method's task hands its stream.
enum Item {
    Message(Vec<u8>),
    /// Ends the stream with this error (an end-of-stream message).
    Fail(Error),
    /// Cuts the stream off, with no end-of-stream message.
    Cut,
}

/// Where a streaming method's task sends its messages.
pub struct Sink {
    tx: mpsc::Sender<Item>,
    codec: Codec,
    pub deadline: Option<Instant>,
}

impl Sink {
    /// Sends one message; false once the client has gone away.
    pub async fn send<T: Message + Serialize>(&self, msg: &T) -> bool {
        self.tx
            .send(Item::Message(self.codec.encode(msg)))
            .await
            .is_ok()
    }

    /// Ends the stream with an error.
    pub async fn fail(self, e: Error) {
        let _ = self.tx.send(Item::Fail(e)).await;
    }

    /// Cuts the stream off without an end-of-stream message, as the
    /// connection to a machine that died is: for a sandbox that ended
    /// mid-stream. The SDKs then probe the sandbox's `/health` (`502`: not
    /// running) and report it killed, as they do against E2B.
    pub async fn cut(self) {
        let _ = self.tx.send(Item::Cut).await;
    }

    /// Resolves when the client has gone away.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Resolves at the call's deadline (never without one).
    pub async fn deadline(&self) {
        match self.deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    }
}

/// A unary error response: the code's HTTP status, a JSON body.
pub fn error_response(e: &Error) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e.to_json())).into_response()
}

/// An error for a call: streams report it in their end-of-stream message
/// (HTTP 200), unary calls in the status and body.
pub fn fail(shape: Shape, codec: Codec, e: Error) -> Response {
    match shape {
        Shape::Unary => error_response(&e),
        Shape::Stream => {
            let mut resp = Body::from(connect::end_stream(Some(&e))).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(codec.content_type(Shape::Stream)),
            );
            resp
        }
    }
}

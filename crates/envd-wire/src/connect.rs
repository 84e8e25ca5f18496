//! Connect RPC framing, server side (<https://connectrpc.com/docs/protocol>):
//! which codec and call shape a request uses, message (de)coding in either
//! codec, the envelopes of streaming calls, and errors in the shape Connect
//! clients parse (a JSON body for unary calls, the end-of-stream envelope for
//! streams).

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The message codec, from the request's content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    Proto,
}

/// Unary (one message each way, bare bodies) or streaming (enveloped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Unary,
    Stream,
}

impl Codec {
    /// Reads a Connect content type: `application/{json,proto}` for unary
    /// calls, `application/connect+{json,proto}` for streams. Parameters
    /// (`; charset=utf-8`) are ignored.
    pub fn from_content_type(value: &str) -> Option<(Codec, Shape)> {
        let base = value.split(';').next()?.trim().to_ascii_lowercase();
        let (shape, name) = match base.strip_prefix("application/connect+") {
            Some(name) => (Shape::Stream, name.to_string()),
            None => (Shape::Unary, base.strip_prefix("application/")?.to_string()),
        };
        let codec = match name.as_str() {
            "json" => Codec::Json,
            "proto" => Codec::Proto,
            _ => return None,
        };
        Some((codec, shape))
    }

    pub fn content_type(self, shape: Shape) -> &'static str {
        match (self, shape) {
            (Codec::Json, Shape::Unary) => "application/json",
            (Codec::Proto, Shape::Unary) => "application/proto",
            (Codec::Json, Shape::Stream) => "application/connect+json",
            (Codec::Proto, Shape::Stream) => "application/connect+proto",
        }
    }

    /// Decodes one message. An empty JSON body is the empty message, as in
    /// binary protobuf.
    pub fn decode<T>(self, data: &[u8]) -> Result<T, Error>
    where
        T: prost::Message + Default + DeserializeOwned,
    {
        match self {
            Codec::Proto => T::decode(data)
                .map_err(|e| Error::invalid_argument(format!("malformed protobuf message: {e}"))),
            Codec::Json if data.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
            Codec::Json => serde_json::from_slice(data)
                .map_err(|e| Error::invalid_argument(format!("malformed JSON message: {e}"))),
        }
    }

    pub fn encode<T>(self, msg: &T) -> Vec<u8>
    where
        T: prost::Message + Serialize,
    {
        match self {
            Codec::Proto => msg.encode_to_vec(),
            // Serialising generated messages to a Vec cannot fail: every
            // field maps to JSON and map keys are strings.
            Codec::Json => serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
}

/// Connect's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// The HTTP status of a unary error response (the protocol's table).
    pub fn http_status(self) -> u16 {
        match self {
            Code::Canceled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }
}

/// An RPC's failure, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Error {
    pub code: Code,
    pub message: String,
}

macro_rules! ctor {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl Error {
            $(pub fn $name(message: impl Into<String>) -> Error {
                Error { code: Code::$code, message: message.into() }
            })*
        }
    };
}

ctor! {
    invalid_argument => InvalidArgument,
    not_found => NotFound,
    already_exists => AlreadyExists,
    permission_denied => PermissionDenied,
    resource_exhausted => ResourceExhausted,
    failed_precondition => FailedPrecondition,
    unimplemented => Unimplemented,
    internal => Internal,
    unavailable => Unavailable,
    unauthenticated => Unauthenticated,
    deadline_exceeded => DeadlineExceeded,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The JSON error object (`{"code": "...", "message": "..."}`): the body
    /// of a unary error response and the `error` of an end-of-stream message.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code.as_str(), "message": self.message })
    }
}

/// Envelope flag bits.
pub const FLAG_COMPRESSED: u8 = 0b01;
pub const FLAG_END_STREAM: u8 = 0b10;

/// Largest enveloped message Warden accepts from a client.
pub const MAX_MESSAGE: usize = 4 << 20;

/// One envelope: flags, 4-byte big-endian length, payload.
pub fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.put_u8(flags);
    b.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    b.put_slice(payload);
    b.freeze()
}

/// The end-of-stream envelope: `{}` on success, `{"error": ...}` otherwise.
pub fn end_stream(error: Option<&Error>) -> Bytes {
    let body = match error {
        Some(e) => serde_json::json!({ "error": e.to_json() }),
        None => serde_json::json!({}),
    };
    envelope(FLAG_END_STREAM, body.to_string().as_bytes())
}

/// The single message of a server-streaming request's body: exactly one
/// uncompressed data envelope (Warden negotiates no compression).
pub fn single_message(body: &[u8]) -> Result<&[u8], Error> {
    let malformed =
        |why: &str| Error::invalid_argument(format!("malformed request envelope: {why}"));
    if body.len() < 5 {
        return Err(malformed("shorter than its 5-byte prefix"));
    }
    let flags = body[0];
    if flags & FLAG_COMPRESSED != 0 {
        return Err(Error::unimplemented(
            "compressed messages are not supported; send them uncompressed",
        ));
    }
    if flags & FLAG_END_STREAM != 0 {
        return Err(malformed("a client may not send an end-of-stream message"));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(Error::resource_exhausted(format!(
            "message of {len} bytes is over the {MAX_MESSAGE}-byte limit"
        )));
    }
    let rest = &body[5..];
    if rest.len() != len {
        return Err(malformed(&format!(
            "it announces {len} bytes but {} follow",
            rest.len()
        )));
    }
    Ok(rest)
}

/// `connect-timeout-ms`: at most 10 digits, as the protocol says.
pub fn parse_timeout_ms(value: &str) -> Option<u64> {
    let v = value.trim();
    (!v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

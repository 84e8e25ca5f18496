//! A code run answered as it happens (`Accept: application/x-ndjson` on
//! `POST /v1/sandboxes/{id}/code`): the interpreter's lines passed on one
//! by one, each with secret values masked in its strings. Nothing is kept:
//! a slow reader slows the run's output down (the tunnel's credit), and
//! the server holds at most one line.

use crate::code::client::Answer;
use crate::code::lines::{mask_strings, Line, Lines};
use crate::secrets::Masker;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

/// The longest line passed on (a figure is a few hundred KiB of base64).
const MAX_LINE: usize = 16 << 20;

fn masked(line: Vec<u8>, masker: Option<&Masker>) -> Bytes {
    let Some(m) = masker else {
        return Bytes::from(line);
    };
    match serde_json::from_slice::<Value>(&line) {
        Ok(mut v) => {
            mask_strings(&mut v, m);
            let mut out = serde_json::to_vec(&v).unwrap_or_default();
            out.push(b'\n');
            Bytes::from(out)
        }
        // Not JSON: masked as text.
        Err(_) => Bytes::from(m.mask_text(&String::from_utf8_lossy(&line)).into_bytes()),
    }
}

/// The run's lines as the response body. The connection (and its
/// charges) lives as long as the body is read; at `deadline` a last line
/// `{"type": "timeout"}` ends it, and dropping the connection interrupts
/// the run.
pub fn respond(
    answer: Answer,
    masker: Option<Arc<Masker>>,
    deadline: tokio::time::Instant,
) -> Response {
    let Answer { body, charges, .. } = answer;
    // `None` once the stream has ended (after an error or the timeout).
    let state = Some((Lines::new(body, MAX_LINE), charges, masker));
    let lines = futures::stream::unfold(state, move |state| async move {
        let (mut lines, charges, masker) = state?;
        let Ok(next) = tokio::time::timeout_at(deadline, lines.next()).await else {
            let out = Bytes::from_static(b"{\"type\":\"timeout\"}\n");
            return Some((Ok(out), None));
        };
        let item = match next {
            Ok(Some(Line::Whole(line))) => Ok(masked(line, masker.as_deref())),
            Ok(Some(Line::TooLong)) => Err(std::io::Error::other(
                "a line of the code interpreter's output is too long",
            )),
            Ok(None) => return None,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        let more = item.is_ok().then_some((lines, charges, masker));
        Some((item, more))
    });
    let mut resp = Body::from_stream(lines).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

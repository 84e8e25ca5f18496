//! A code run answered as it happens (`Accept: application/x-ndjson` on
//! `POST /v1/sandboxes/{id}/code`): the interpreter's lines passed on one
//! by one, each with secret values masked in its strings. Nothing is kept:
//! a slow reader slows the run's output down (the tunnel's credit), and
//! the server holds at most one line.

use crate::code::client::Answer;
use crate::secrets::Masker;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;

/// The longest line passed on (a figure is a few hundred KiB of base64).
const MAX_LINE: usize = 16 << 20;

/// Masks every string in `v`.
fn mask_strings(v: &mut Value, m: &Masker) {
    match v {
        Value::String(s) => *s = m.mask_text(s),
        Value::Array(a) => a.iter_mut().for_each(|x| mask_strings(x, m)),
        Value::Object(o) => o.values_mut().for_each(|x| mask_strings(x, m)),
        _ => {}
    }
}

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
    let state = (body, Vec::<u8>::new(), charges, masker, false);
    let lines = futures::stream::unfold(
        state,
        move |(mut body, mut pending, charges, masker, mut done)| async move {
            loop {
                if let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let out = masked(line, masker.as_deref());
                    return Some((Ok(out), (body, pending, charges, masker, done)));
                }
                if done {
                    if pending.is_empty() {
                        return None;
                    }
                    let rest = std::mem::take(&mut pending);
                    let out = masked(rest, masker.as_deref());
                    return Some((Ok(out), (body, pending, charges, masker, done)));
                }
                if pending.len() > MAX_LINE {
                    let e = std::io::Error::other(
                        "a line of the code interpreter's output is too long",
                    );
                    return Some((Err(e), (body, Vec::new(), charges, masker, true)));
                }
                let Ok(next) = tokio::time::timeout_at(deadline, body.frame()).await else {
                    let out = Bytes::from_static(b"{\"type\":\"timeout\"}\n");
                    return Some((Ok(out), (body, Vec::new(), charges, masker, true)));
                };
                match next {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            pending.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => {
                        let e = std::io::Error::other(e.to_string());
                        return Some((Err(e), (body, Vec::new(), charges, masker, true)));
                    }
                    None => done = true,
                }
            }
        },
    );
    let mut resp = Body::from_stream(lines).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}

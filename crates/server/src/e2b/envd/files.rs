//! envd's plain HTTP routes: `GET /files` (download), `POST /files`
//! (upload, multipart or `application/octet-stream`, optionally gzip) and
//! `GET /health`. Errors are `{"code": <status>, "message": ...}`.

use super::entry::type_word;
use super::paths::{absolute, base_name};
use crate::error::ApiError;
use crate::service::audit::{Action, Audit};
use crate::service::sandbox_files::{read_stream, write_stream};
use crate::state::Shared;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use warden_envd_wire::connect::{Code, Error};

#[derive(Deserialize)]
pub struct FileParams {
    pub path: Option<String>,
    /// Which user to act as. Warden runs everything in a sandbox as its one
    /// user, so this only enters a signed URL's signature.
    pub username: Option<String>,
    /// A signed URL's signature (`download_url`, `upload_url`), in place
    /// of the access token.
    pub signature: Option<String>,
    /// Unix seconds after which the signature is refused.
    pub signature_expiration: Option<String>,
}

/// The sandbox a `/files` request may act on: by its access token, or by a
/// signed URL that grants `operation` on the request's path.
fn authorized(
    st: &Shared,
    headers: &HeaderMap,
    p: &FileParams,
    operation: &str,
) -> Result<std::sync::Arc<crate::manager::Live>, Error> {
    // The access token, when sent, decides.
    let signature = match p.signature.as_deref() {
        Some(s) if !headers.contains_key("x-access-token") => s,
        _ => return super::access::sandbox(st, headers),
    };
    let expiration =
        match p.signature_expiration.as_deref() {
            None => None,
            Some(e) => Some(e.trim().parse::<i64>().map_err(|_| {
                Error::invalid_argument("signature_expiration must be Unix seconds")
            })?),
        };
    let grant = crate::e2b::token::FileGrant {
        path: p.path.as_deref().unwrap_or(""),
        operation,
        user: p.username.as_deref().unwrap_or(""),
        expiration,
    };
    super::access::signed_file(st, headers, &grant, signature)
}

#[derive(Serialize)]
pub struct WriteInfo {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    path: String,
    /// The file's metadata as written (none: left out, as envd does).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

/// Most bytes of a refused upload read (and dropped) before answering, so
/// the client, still sending, reads the refusal instead of a reset; past
/// it the connection is closed.
const DRAIN_LIMIT: usize = 16 << 20;

/// The header prefix an upload's metadata travels under (envd 0.6.2+).
const METADATA_HEADER: &str = "x-metadata-";

/// An upload's metadata from its `X-Metadata-<key>: <value>` headers, keys
/// lowercased (HTTP header names are case-blind, and envd lowercases
/// them). A key must be an HTTP token, a value printable ASCII, and all of
/// it within what a file's stat carries back (`META_MAX_BYTES`), so what
/// is written is what is read.
fn upload_metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(METADATA_HEADER) else {
            continue;
        };
        // Header names are tokens already; an empty key is not.
        if key.is_empty() {
            return Err(Error::invalid_argument("metadata: an empty key"));
        }
        let value = value
            .to_str()
            .ok()
            .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .ok_or_else(|| {
                Error::invalid_argument(format!(
                    "metadata {key:?}: a value must be printable US-ASCII"
                ))
            })?;
        bytes += key.len() + value.len();
        out.push((key.to_string(), value.to_string()));
    }
    if bytes > warden_protocol::META_MAX_BYTES {
        return Err(Error::invalid_argument(format!(
            "metadata: {bytes} bytes of keys and values, more than {}",
            warden_protocol::META_MAX_BYTES
        )));
    }
    Ok(out)
}

/// An envd HTTP error: the SDKs map 400/401/404/507 to their exceptions
/// and a 502 "... was not found" to "the sandbox is gone".
fn http_error(e: &Error) -> Response {
    let status = match e.code {
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::INSUFFICIENT_STORAGE,
        Code::Unavailable => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The control API's error shape, which the SDKs read the same way here.
    crate::e2b::control::error::E2bError {
        status,
        code: e.code.as_str(),
        message: e.message.clone(),
    }
    .into_response()
}

fn api_error(e: ApiError) -> Response {
    http_error(&super::errors::from_api(e))
}

pub async fn health(State(st): State<Shared>, headers: HeaderMap) -> Response {
    match super::access::sandbox(&st, &headers) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => http_error(&e),
    }
}

pub async fn download(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(p): Query<FileParams>,
) -> Response {
    let live = match authorized(&st, &headers, &p, "read") {
        Ok(l) => l,
        Err(e) => return http_error(&e),
    };
    let path = match p.path.as_deref().map(absolute) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return http_error(&e),
        None => return http_error(&Error::invalid_argument("the path parameter is required")),
    };
    // E2B reads through symlinks; the init keeps them inside the sandbox.
    match read_stream(&live.client, &path, true).await {
        Ok(stream) => {
            let mut resp = Body::from_stream(stream).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            resp
        }
        Err(e) => api_error(e.into()),
    }
}

pub async fn upload(
    State(st): State<Shared>,
    Query(p): Query<FileParams>,
    req: Request,
) -> Response {
    let live = match authorized(&st, req.headers(), &p, "write") {
        Ok(l) => l,
        // Not drained: a caller without the sandbox's token gets no reads.
        Err(e) => return http_error(&e),
    };
    let (parts, body) = req.into_parts();
    let body = RawBody::new(body);
    let written = match write_files(&st, &live, &p, parts, &body).await {
        Ok(w) => w,
        Err(refusal) => {
            // Read what the client is still sending, so it reads this
            // answer instead of a reset.
            body.drain().await;
            return refusal;
        }
    };
    if let Err(e) = st
        .audit(
            &live.tenant,
            Audit {
                actor: super::audit::ACTOR,
                action: Action::SandboxFileWrite,
                target: &format!("{}:{}", live.id, written[0].path),
                outcome: &format!("ok ({} file(s), e2b)", written.len()),
            },
        )
        .await
    {
        return api_error(e);
    }
    Json(written).into_response()
}

/// A request body that the upload reads through [`RawBody::reader`] (the
/// multipart parser, the gzip decoder, or the file itself), and that a
/// refusal then reads on, raw, for at most [`DRAIN_LIMIT`] more bytes,
/// whatever part or decoder was reading it.
struct RawBody(Arc<tokio::sync::Mutex<axum::body::BodyDataStream>>);

impl RawBody {
    fn new(body: Body) -> Self {
        RawBody(Arc::new(tokio::sync::Mutex::new(body.into_data_stream())))
    }

    fn reader(&self) -> impl futures::Stream<Item = Result<Bytes, axum::Error>> + Send + Unpin {
        Box::pin(futures::stream::unfold(self.0.clone(), |raw| async move {
            let next = raw.lock().await.next().await;
            next.map(|chunk| (chunk, raw))
        }))
    }

    async fn drain(&self) {
        let mut raw = self.0.lock().await;
        let mut left = DRAIN_LIMIT;
        while let Some(Ok(c)) = raw.next().await {
            left = left.saturating_sub(c.len());
            if left == 0 {
                return;
            }
        }
    }
}

/// Writes the upload's files (one octet-stream body, gzip or not, or a
/// multipart form's parts); a refusal is the answer to give.
async fn write_files(
    st: &Shared,
    live: &crate::manager::Live,
    p: &FileParams,
    parts: axum::http::request::Parts,
    body: &RawBody,
) -> Result<Vec<WriteInfo>, Response> {
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let gzip = match parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(http_error(&Error::invalid_argument(format!(
                "unsupported Content-Encoding {other:?} (gzip or none)"
            ))))
        }
    };
    let meta = upload_metadata(&parts.headers).map_err(|e| http_error(&e))?;
    let mut written = Vec::new();
    if ct.starts_with("multipart/form-data") {
        if gzip {
            return Err(http_error(&Error::invalid_argument(
                "gzip applies to application/octet-stream uploads only",
            )));
        }
        let req = Request::from_parts(parts, Body::from_stream(body.reader()));
        let mut form = Multipart::from_request(req, st)
            .await
            .map_err(|e| http_error(&Error::invalid_argument(e.body_text())))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| http_error(&Error::invalid_argument(e.body_text())))?
        {
            // One file: the path parameter; several: each part's file name.
            let dest = match (p.path.as_deref(), field.file_name()) {
                (Some(path), _) if written.is_empty() => path.to_string(),
                (_, Some(name)) if !name.is_empty() => name.to_string(),
                _ => {
                    return Err(http_error(&Error::invalid_argument(
                        "each part needs a file name (its destination path)",
                    )))
                }
            };
            let chunks = futures::stream::unfold(field, |mut f| async move {
                match f.chunk().await {
                    Ok(Some(c)) => Some((Ok(c), f)),
                    Ok(None) => None,
                    Err(e) => Some((Err(e.body_text()), f)),
                }
            });
            written.push(write_one(live, &dest, &meta, Box::pin(chunks)).await?);
        }
    } else {
        let Some(dest) = p.path.as_deref() else {
            return Err(http_error(&Error::invalid_argument(
                "the path parameter is required",
            )));
        };
        let info = if gzip {
            write_one(live, dest, &meta, Box::pin(gunzip(body.reader()))).await?
        } else {
            let raw = body.reader().map(|c| c.map_err(|e| e.to_string()));
            write_one(live, dest, &meta, Box::pin(raw)).await?
        };
        written.push(info);
    }
    if written.is_empty() {
        return Err(http_error(&Error::invalid_argument(
            "the upload carried no file",
        )));
    }
    Ok(written)
}

async fn write_one<S>(
    live: &crate::manager::Live,
    dest: &str,
    meta: &[(String, String)],
    body: S,
) -> Result<WriteInfo, Response>
where
    S: futures::Stream<Item = Result<Bytes, String>> + Unpin,
{
    let path = absolute(dest).map_err(|e| http_error(&e))?;
    super::filesystem::ensure_parent(live, &path)
        .await
        .map_err(|e| http_error(&e))?;
    let st = write_stream(&live.client, &path, 0o644, meta.to_vec(), body)
        .await
        .map_err(|e| api_error(e.into()))?;
    Ok(WriteInfo {
        name: base_name(&path).to_string(),
        kind: type_word(st.kind),
        path,
        metadata: st.meta.into_iter().collect(),
    })
}

/// Decompresses a gzip body as it arrives (never the whole upload in
/// memory): each compressed chunk goes through the decoder and what it
/// yields is passed on.
fn gunzip<S>(body: S) -> impl futures::Stream<Item = Result<Bytes, String>> + Send
where
    S: futures::Stream<Item = Result<Bytes, axum::Error>> + Send + Unpin + 'static,
{
    let decoder = flate2::write::GzDecoder::new(Vec::new());
    futures::stream::unfold(Some((body, decoder)), |state| async move {
        let (mut body, mut dec) = state?;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = dec.write_all(&chunk) {
                        return Some((Err(format!("gzip: {e}")), None));
                    }
                    let out = std::mem::take(dec.get_mut());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((body, dec))));
                    }
                }
                Some(Err(e)) => return Some((Err(e.to_string()), None)),
                None => {
                    return match dec.finish() {
                        Ok(rest) if rest.is_empty() => None,
                        Ok(rest) => Some((Ok(Bytes::from(rest)), None)),
                        Err(e) => Some((Err(format!("gzip: {e}")), None)),
                    };
                }
            }
        }
    })
}

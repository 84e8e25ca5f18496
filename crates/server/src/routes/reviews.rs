//! Review jobs over HTTP: submit, list, get, cancel (`service::reviews`
//! does the work), logs, webhook deliveries.

use crate::api::{Page, PageParams};
use crate::api_reviews::{self, Delivery, Review, SubmitReview};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::jobs::log_read::{self, Decoder};
use crate::jobs::logs::{self, Streams};
use crate::service::reviews;
use crate::state::Shared;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use warden_store::jobs::ReviewRecord;

async fn full(st: &Shared, r: ReviewRecord) -> ApiResult<Review> {
    let outs = if r.status.is_terminal() {
        st.jobs.list_outputs(&r.tenant_id, &r.id).await?
    } else {
        Vec::new()
    };
    Ok(api_reviews::review(r, outs))
}

#[utoipa::path(post, path = "/v1/reviews", tag = "reviews", request_body = SubmitReview,
    responses((status = 202, body = Review, description = "queued"),
              (status = 200, body = Review, description = "the job first submitted with this idempotency_key"),
              (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "`command_denied`: refused by the tenant's command policy"),
              (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "`policy_unavailable`: the command policy hook failed")))]
pub async fn submit(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<SubmitReview>,
) -> ApiResult<(StatusCode, Json<Review>)> {
    let (job, created) = reviews::submit(&st, &caller, &req).await?;
    let status = match created {
        true => StatusCode::ACCEPTED,
        false => StatusCode::OK,
    };
    Ok((status, Json(full(&st, job).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct ListParams {
    /// pending | running | succeeded | failed | cancelled | timed_out
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(
    operation_id = "list_reviews",
    get, path = "/v1/reviews", tag = "reviews", params(ListParams),
    responses((status = 200, body = Page<Review>), (status = 400, body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(st): State<Shared>,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<Page<Review>>> {
    let page = PageParams {
        limit: p.limit,
        cursor: p.cursor.clone(),
    };
    let got = reviews::list(
        &st,
        &caller,
        p.status.as_deref(),
        page.cursor.as_deref(),
        page.limit(),
    )
    .await?;
    let mut items = Vec::new();
    for r in got.items {
        items.push(full(&st, r).await?);
    }
    Ok(Json(Page {
        items,
        next_cursor: got.next,
    }))
}

#[utoipa::path(
    operation_id = "get_review",
    get, path = "/v1/reviews/{id}", tag = "reviews",
    responses((status = 200, body = Review), (status = 404, body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Review>> {
    let r = reviews::find(&st, &caller, &id).await?;
    Ok(Json(full(&st, r).await?))
}

#[utoipa::path(post, path = "/v1/reviews/{id}/cancel", tag = "reviews",
    responses((status = 200, body = Review), (status = 404, body = ErrorBody)))]
pub async fn cancel(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Review>> {
    let r = reviews::cancel(&st, &caller, &id).await?;
    Ok(Json(full(&st, r).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct LogParams {
    /// stdout | stderr | both (default)
    pub stream: Option<String>,
    /// Keep the response open and send more as the job prints, until it ends.
    pub follow: Option<bool>,
}

#[utoipa::path(get, path = "/v1/reviews/{id}/logs", tag = "reviews", params(LogParams),
    responses((status = 200, description = "text/plain: what the command printed (Warden's own notes as `[warden]` lines on stderr)"),
              (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody, description = "`gone`: the job's outputs and log were deleted")))]
pub async fn logs(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Query(p): Query<LogParams>,
) -> ApiResult<Response> {
    let r = reviews::find(&st, &caller, &id).await?;
    if let Some(e) = crate::routes::review_outputs::deleted(&r) {
        return Err(e);
    }
    let streams = Streams::parse(p.stream.as_deref())
        .ok_or_else(|| ApiError::bad_request("stream is stdout, stderr or both"))?;
    let local = logs::path(&st.logs_dir(), r.id.as_str());
    // Streamed, never read whole: a reader costs the server one buffer
    // however large the log is.
    let body = if p.follow.unwrap_or(false) && !r.status.is_terminal() {
        Body::from_stream(follow(st.clone(), r, local, streams))
    } else {
        match tokio::fs::File::open(&local).await {
            Ok(f) => Body::from_stream(log_read::stream(f, Decoder::new(streams))),
            Err(_) => match log_read::stored_reader(caller.store.objects(), r.id.as_str(), 0).await
            {
                Some(rd) => Body::from_stream(log_read::stream(rd, Decoder::new(streams))),
                None => Body::empty(),
            },
        }
    };
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

type LogStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send>>;

/// Tails the local log while the job runs here, a bounded piece at a time;
/// once the job is over, sends the rest (from the file it holds open, or
/// from the stored log) and ends.
fn follow(
    st: Shared,
    r: ReviewRecord,
    path: std::path::PathBuf,
    streams: Streams,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    use tokio::io::AsyncReadExt;
    struct Tail {
        st: Shared,
        r: ReviewRecord,
        path: std::path::PathBuf,
        file: Option<tokio::fs::File>,
        decoder: Decoder,
        buf: Vec<u8>,
        /// The rest of the log once the job ended.
        rest: Option<LogStream>,
    }
    let state = Tail {
        st,
        r,
        path,
        file: None,
        decoder: Decoder::new(streams),
        buf: vec![0; log_read::CHUNK],
        rest: None,
    };
    futures::stream::unfold(state, move |mut t| async move {
        loop {
            if let Some(rest) = &mut t.rest {
                let next = rest.next().await?;
                return Some((next, t));
            }
            if t.file.is_none() {
                t.file = tokio::fs::File::open(&t.path).await.ok();
            }
            // Only what was appended since the last look, a chunk at a time.
            let n = match &mut t.file {
                Some(f) => f.read(&mut t.buf).await.unwrap_or(0),
                None => 0,
            };
            if n > 0 {
                let mut out = Vec::new();
                t.decoder.feed(&t.buf[..n], &mut out);
                if !out.is_empty() {
                    return Some((Ok(bytes::Bytes::from(out)), t));
                }
                continue;
            }
            let status =
                t.st.jobs
                    .get_review(&t.r.tenant_id, &t.r.id)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.status);
            if status.is_none_or(|s| s.is_terminal()) {
                // The log is complete now. The file held open has all of
                // it (even after it moved to the object store); without
                // one, the stored log has.
                let decoder = t.decoder.clone();
                t.rest = Some(match t.file.take() {
                    Some(f) => Box::pin(log_read::stream(f, decoder)),
                    None => {
                        let store = t.st.tenant_store(t.r.tenant_id.clone());
                        match log_read::stored_reader(store.objects(), t.r.id.as_str(), 0).await {
                            Some(rd) => Box::pin(log_read::stream(rd, decoder)),
                            None => return None,
                        }
                    }
                });
                continue;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub items: Vec<Delivery>,
}

#[utoipa::path(get, path = "/v1/reviews/{id}/webhooks", tag = "reviews",
    responses((status = 200, body = DeliveryList), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryList>> {
    let r = reviews::find(&st, &caller, &id).await?;
    let items = st.jobs.list_deliveries(&r.tenant_id, &r.id).await?;
    Ok(Json(DeliveryList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    /// Key of the `X-Warden-Signature` HMAC on this tenant's webhooks.
    pub secret: String,
}

#[utoipa::path(get, path = "/v1/webhooks/secret", tag = "reviews",
    responses((status = 200, body = WebhookSecret)))]
pub async fn webhook_secret(
    caller: Caller,
    State(st): State<Shared>,
) -> ApiResult<Json<WebhookSecret>> {
    let secret = st.jobs.webhook_secret(caller.store.tenant_id()).await?;
    Ok(Json(WebhookSecret { secret }))
}

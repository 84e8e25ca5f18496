//! A review job's outputs: list, download one, and delete them all (with
//! the stored log) to give their bytes back to the tenant's storage.

use crate::api_reviews::ReviewOutput;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::service::audit::{Action, Audit};
use crate::service::reviews::{find, review_id};
use crate::state::Shared;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use warden_store::jobs::{OutputsDeleted, ReviewRecord};
use warden_store::{now_ms, ObjectKind};

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OutputList {
    pub items: Vec<ReviewOutput>,
}

#[utoipa::path(get, path = "/v1/reviews/{id}/outputs", tag = "reviews", operation_id = "outputs",
    responses((status = 200, body = OutputList), (status = 404, body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<OutputList>> {
    let r = find(&st, &caller, &id).await?;
    let items = st.jobs.list_outputs(&r.tenant_id, &r.id).await?;
    Ok(Json(OutputList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// What deleting a job's outputs gave back.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OutputsDeletion {
    /// Output files removed (the manifest included).
    pub outputs: usize,
    /// Bytes given back to the tenant's storage: the outputs and the
    /// stored log.
    pub freed_bytes: u64,
}

#[utoipa::path(delete, path = "/v1/reviews/{id}/outputs", tag = "reviews", operation_id = "delete_outputs",
    responses((status = 200, body = OutputsDeletion, description = "the job's outputs and stored log are gone; the job's record stays (`outputs_deleted_at`). Deleting again answers 200 with nothing freed"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "`conflict`: the job has not ended; cancel it first")))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<OutputsDeletion>> {
    let id = review_id(&id)?;
    let tenant = caller.store.tenant_id();
    let (outputs, freed_bytes) = match st.jobs.delete_outputs(tenant, &id, now_ms()).await? {
        OutputsDeleted::NoJob => return Err(ApiError::not_found("review")),
        OutputsDeleted::NotEnded(status) => {
            return Err(ApiError::conflict(format!(
                "review {id} is {}: its outputs are deleted once it has ended (cancel it first)",
                status.as_str()
            )))
        }
        OutputsDeleted::Deleted { outputs, bytes } => (outputs, bytes),
    };
    // The rows are gone, so nothing serves these objects any more; should
    // the server die before deleting them, the start-up sweep does.
    let objects = caller.store.objects();
    for o in &outputs {
        objects.delete(ObjectKind::Outputs, o.as_str()).await?;
    }
    objects.delete(ObjectKind::Logs, id.as_str()).await?;
    st.audit(
        tenant,
        Audit {
            actor: caller.actor(),
            action: Action::ReviewDeleteOutputs,
            target: id.as_str(),
            outcome: &format!("{} outputs, {freed_bytes} bytes", outputs.len()),
        },
    )
    .await?;
    Ok(Json(OutputsDeletion {
        outputs: outputs.len(),
        freed_bytes,
    }))
}

/// What a read of a job's deleted log or outputs answers.
pub(crate) fn deleted(r: &ReviewRecord) -> Option<ApiError> {
    r.outputs_deleted_at.map(|at| {
        ApiError::new(
            StatusCode::GONE,
            "gone",
            format!(
                "review {}'s outputs and log were deleted at {}",
                r.id,
                crate::api::time(at)
            ),
        )
    })
}

#[utoipa::path(get, path = "/v1/reviews/{id}/outputs/{path}", tag = "reviews", operation_id = "output",
    params(("path" = String, Path, description = "the output's path, e.g. report.html or charts/a.png")),
    responses((status = 200, description = "the output's bytes"), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody, description = "`gone`: the job's outputs were deleted")))]
pub async fn download(
    caller: Caller,
    State(st): State<Shared>,
    Path((id, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = find(&st, &caller, &id).await?;
    if let Some(e) = deleted(&r) {
        return Err(e);
    }
    let o = st
        .jobs
        .get_output(&r.tenant_id, &r.id, &path)
        .await?
        .ok_or_else(|| ApiError::not_found("output"))?;
    let stream = caller
        .store
        .objects()
        .get_stream(ObjectKind::Outputs, o.object_id.as_str())
        .await?;
    let mut resp =
        Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other))).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(o.size));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", o.sha256)) {
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}

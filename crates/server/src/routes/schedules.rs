//! `/v1/schedules`: the HTTP side of a tenant's schedules
//! (`service::schedules` does the work; the scheduler that submits their
//! slots is `jobs::schedules`).

use crate::api_schedules::{CreateSchedule, Schedule, ScheduleList};
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

#[utoipa::path(
    operation_id = "create_schedule",
    post, path = "/v1/schedules", tag = "schedules", request_body = CreateSchedule,
    responses((status = 201, body = Schedule),
              (status = 400, body = ErrorBody, description = "a bad name or cron expression, or a review that could not be submitted"),
              (status = 409, body = ErrorBody, description = "the tenant has a schedule of that name"),
              (status = 429, body = ErrorBody, description = "the tenant keeps 64 schedules already")))]
pub async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<CreateSchedule>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let s = service::schedules::create(&st, &caller, &req.name, &req.cron, &req.review, req.paused)
        .await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

#[utoipa::path(
    operation_id = "list_schedules",
    get, path = "/v1/schedules", tag = "schedules",
    responses((status = 200, body = ScheduleList)))]
pub async fn list(caller: Caller, State(st): State<Shared>) -> ApiResult<Json<ScheduleList>> {
    let items = service::schedules::list(&st, &caller).await?;
    Ok(Json(ScheduleList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    operation_id = "get_schedule",
    get, path = "/v1/schedules/{id}", tag = "schedules",
    responses((status = 200, body = Schedule), (status = 404, body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(
        service::schedules::find(&st, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(
    operation_id = "delete_schedule",
    delete, path = "/v1/schedules/{id}", tag = "schedules",
    responses((status = 204, description = "deleted; its past runs stay, as reviews"),
              (status = 404, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    service::schedules::delete(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    operation_id = "pause_schedule",
    post, path = "/v1/schedules/{id}/pause", tag = "schedules",
    responses((status = 200, body = Schedule), (status = 404, body = ErrorBody)))]
pub async fn pause(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(
        service::schedules::set_paused(&st, &caller, &id, true)
            .await?
            .into(),
    ))
}

#[utoipa::path(
    operation_id = "resume_schedule",
    post, path = "/v1/schedules/{id}/resume", tag = "schedules",
    responses((status = 200, body = Schedule, description = "running again from the first slot after now"),
              (status = 404, body = ErrorBody)))]
pub async fn resume(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<Schedule>> {
    Ok(Json(
        service::schedules::set_paused(&st, &caller, &id, false)
            .await?
            .into(),
    ))
}

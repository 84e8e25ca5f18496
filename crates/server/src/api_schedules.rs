//! The API's JSON shapes for schedules: a review job submitted on a cron
//! schedule.

use crate::api::time;
use crate::api_reviews::SubmitReview;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_store::ScheduleRecord;

/// `POST /v1/schedules`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// 1-63 of `[A-Za-z0-9._-]`, starting with a letter or digit; unique
    /// among the tenant's schedules.
    pub name: String,
    /// When, in UTC: five fields (`minute hour day-of-month month
    /// day-of-week`, e.g. `0 6 * * MON`), or six with seconds first.
    pub cron: String,
    /// The review each slot submits, as `POST /v1/reviews` takes it
    /// (without `idempotency_key`, which the schedule sets per slot).
    pub review: SubmitReview,
    /// Created paused (default: running).
    #[serde(default)]
    pub paused: bool,
}

#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    pub cron: String,
    #[schema(value_type = Object)]
    pub review: serde_json::Value,
    pub paused: bool,
    /// The next slot it submits (none while paused).
    pub next_run_at: Option<String>,
    /// The last slot submitted, its review, and why it was refused if it
    /// was (the schedule goes on either way).
    pub last_run_at: Option<String>,
    pub last_review_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
}

impl From<ScheduleRecord> for Schedule {
    fn from(s: ScheduleRecord) -> Schedule {
        Schedule {
            id: s.id.to_string(),
            name: s.name,
            cron: s.cron,
            review: s.review,
            next_run_at: (!s.paused).then(|| time(s.next_run_at)),
            paused: s.paused,
            last_run_at: s.last_run_at.map(time),
            last_review_id: s.last_review_id,
            last_error: s.last_error,
            created_at: time(s.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    pub items: Vec<Schedule>,
}

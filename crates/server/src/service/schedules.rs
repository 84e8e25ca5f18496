//! A tenant's schedules: a review job submitted at every slot of a cron
//! expression (UTC; five fields, or six with seconds first).
//!
//! Each slot is submitted once. The scheduler of every node scans for due
//! schedules ([`fire_due`]); the slot's review carries the idempotency key
//! `schedule:<id>:<slot>`, so two nodes submitting one slot (or one node
//! submitting it again after a crash) get the same job; the schedule then
//! moves on to the next slot with a compare-and-set. Slots missed while no
//! server ran (or while the scheduler was behind) are not submitted one by
//! one: the latest of them is, once, and the schedule continues from
//! there. A paused schedule submits nothing; resuming it continues from
//! the next slot after the resume. At most one run of a schedule waits in
//! the queue: a slot that comes while the previous run has not started is
//! skipped (and says so in `last_error`).

use crate::api_reviews::SubmitReview;
use crate::auth::Caller;
use crate::service::audit::{self, Action};
use crate::service::{reviews, sandboxes, Error, Result};
use crate::state::{AppState, Shared};
use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use warden_store::jobs::ReviewStatus;
use warden_store::{
    now_ms, KeyId, Millis, ReviewId, ScheduleId, ScheduleRecord, ScheduleRun, StoreError, TenantId,
};

/// Schedules one tenant may keep.
pub const MAX_PER_TENANT: u32 = 64;

/// Labels every run carries: the schedule's id and the slot.
pub const LABEL_SCHEDULE: &str = "schedule";
pub const LABEL_SLOT: &str = "schedule_slot";

/// Parses a cron expression: five fields (minute first), or six with
/// seconds first; names (`MON`, `JAN`) and `L`, `#`, `W` as croner reads
/// them.
pub fn parse_cron(expr: &str) -> Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| Error::invalid(format!("cron {expr:?}: {e}")))
}

/// `ms` as a time, down to its whole second: slots are whole seconds, and
/// croner keeps a time's fraction in what it finds.
fn at(ms: Millis) -> Result<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms.div_euclid(1000) * 1000)
        .single()
        .ok_or_else(|| Error::invalid(format!("time {ms} ms is out of range")))
}

/// The first slot strictly after `after`.
pub fn next_after(cron: &Cron, after: Millis) -> Result<Millis> {
    let t = cron
        .find_next_occurrence(&at(after)?, false)
        .map_err(|e| Error::invalid(format!("cron {}: no next slot ({e})", cron.pattern)))?;
    Ok(t.timestamp_millis())
}

/// The slot to submit for a schedule due at `due` (<= `now`): the latest
/// slot at or before `now`, never before `due`.
fn latest_slot(cron: &Cron, due: Millis, now: Millis) -> Result<Millis> {
    let latest = cron
        .find_previous_occurrence(&at(now)?, true)
        .map(|t| t.timestamp_millis())
        .unwrap_or(due);
    Ok(latest.max(due))
}

/// The review each slot submits: refused now if it could never be
/// submitted (as a submit checks it), or if it sets what the schedule
/// sets itself.
async fn check_review(st: &AppState, caller: &Caller, review: &SubmitReview) -> Result<()> {
    if review.idempotency_key.is_some() {
        return Err(Error::invalid(
            "review.idempotency_key: the schedule sets it for each slot",
        ));
    }
    if [LABEL_SCHEDULE, LABEL_SLOT]
        .iter()
        .any(|k| review.labels.contains_key(*k))
    {
        return Err(Error::invalid(format!(
            "review.labels: {LABEL_SCHEDULE:?} and {LABEL_SLOT:?} are set by the schedule"
        )));
    }
    let mut labelled = review.labels.clone();
    labelled.insert(LABEL_SCHEDULE.into(), String::new());
    labelled.insert(LABEL_SLOT.into(), String::new());
    sandboxes::check_labels(&labelled).map_err(|e| Error::invalid(format!("review.{e}")))?;
    reviews::validate(st, caller, review).await?;
    Ok(())
}

/// Creates the caller's schedule, audited whatever the outcome.
pub async fn create(
    st: &AppState,
    caller: &Caller,
    name: &str,
    cron: &str,
    review: &SubmitReview,
    paused: bool,
) -> Result<ScheduleRecord> {
    let result = async {
        super::check_resource_name("schedule", name)?;
        let parsed = parse_cron(cron)?;
        check_review(st, caller, review).await?;
        let tenant = caller.store.tenant_id();
        let now = now_ms();
        let record = ScheduleRecord {
            id: ScheduleId::generate(),
            tenant_id: tenant.clone(),
            name: name.to_string(),
            cron: cron.to_string(),
            review: serde_json::to_value(review).map_err(|e| Error::internal("encoding", e))?,
            paused,
            next_run_at: next_after(&parsed, now)?,
            last_run_at: None,
            last_review_id: None,
            last_error: None,
            created_at: now,
        };
        st.meta
            .create_schedule(&record, MAX_PER_TENANT)
            .await
            .map_err(|e| match e {
                StoreError::CountQuota(m) => Error::Quota(m),
                e => Error::from(e),
            })?;
        Ok::<_, Error>(record)
    }
    .await;
    let (target, outcome) = match &result {
        Ok(s) => (s.id.to_string(), "ok"),
        Err(e) => (String::new(), e.code()),
    };
    audit::by_caller(st, caller, Action::ScheduleCreate, &target, outcome).await?;
    result
}

/// The caller's schedule `id` (another tenant's is not found).
pub async fn find(st: &AppState, caller: &Caller, id: &str) -> Result<ScheduleRecord> {
    let not_found = || Error::not_found(format!("schedule {id:?}"));
    let id = ScheduleId::parse(id).ok_or_else(not_found)?;
    st.meta
        .get_schedule(caller.store.tenant_id(), &id)
        .await?
        .ok_or_else(not_found)
}

pub async fn list(st: &AppState, caller: &Caller) -> Result<Vec<ScheduleRecord>> {
    Ok(st.meta.list_schedules(caller.store.tenant_id()).await?)
}

/// Deletes the caller's schedule (its past runs stay, as reviews).
pub async fn delete(st: &AppState, caller: &Caller, id: &str) -> Result<()> {
    let s = find(st, caller, id).await?;
    st.meta.delete_schedule(&s.tenant_id, &s.id).await?;
    Ok(audit::by_caller(st, caller, Action::ScheduleDelete, s.id.as_str(), "ok").await?)
}

/// Pauses or resumes the caller's schedule; a resume continues from the
/// first slot after now (what was missed while paused is not submitted).
pub async fn set_paused(
    st: &AppState,
    caller: &Caller,
    id: &str,
    paused: bool,
) -> Result<ScheduleRecord> {
    let s = find(st, caller, id).await?;
    let next = match paused {
        true => s.next_run_at,
        false => next_after(&parse_cron(&s.cron)?, now_ms())?,
    };
    st.meta
        .set_schedule_paused(&s.tenant_id, &s.id, paused, next)
        .await?;
    let action = match paused {
        true => Action::SchedulePause,
        false => Action::ScheduleResume,
    };
    audit::by_caller(st, caller, action, s.id.as_str(), "ok").await?;
    find(st, caller, id).await
}

/// Per node: schedules whose last try failed for a reason of Warden's
/// own (their slot stays due), and when they may be tried again.
pub type Backoff = HashMap<ScheduleId, Instant>;

/// How long one slot's submit may take before it counts as failed (it may
/// resolve a webhook's host name, for instance).
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a schedule whose slot failed for a reason of Warden's own
/// waits before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Schedules of one tenant tried per tick: its oldest due ones. Each
/// tenant's are tried in a task of their own, so one tenant's slow
/// submits never hold up another's.
const PER_TENANT_PER_TICK: usize = 8;

/// Submits the due slots of every tenant's schedules (the scheduler's
/// tick, on every node); returns how many schedules moved on.
pub async fn fire_due(st: &Shared, backoff: &mut Backoff) -> Result<usize> {
    let now = now_ms();
    let started = Instant::now();
    backoff.retain(|_, until| *until > started);
    let mut by_tenant: BTreeMap<TenantId, Vec<ScheduleRecord>> = BTreeMap::new();
    for s in st.meta.due_schedules(now, 256).await? {
        if backoff.contains_key(&s.id) {
            continue;
        }
        let group = by_tenant.entry(s.tenant_id.clone()).or_default();
        if group.len() < PER_TENANT_PER_TICK {
            group.push(s);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (_, group) in by_tenant {
        let st = st.clone();
        tasks.spawn(async move {
            let mut tried = Vec::new();
            for s in group {
                let r = fire(&st, &s, now).await;
                tried.push((s.id, r));
            }
            tried
        });
    }
    let mut moved = 0;
    while let Some(done) = tasks.join_next().await {
        let tried = done.map_err(|e| Error::internal("a scheduler task", e))?;
        for (id, r) in tried {
            match r {
                Ok(true) => moved += 1,
                Ok(false) => {}
                // The slot stays due: tried again here after a while, or
                // by another node, and its idempotency key keeps it to
                // one job whoever submits it.
                Err(e) => {
                    tracing::warn!(schedule = %id, "submitting a scheduled review: {e}");
                    backoff.insert(id, Instant::now() + RETRY_AFTER);
                }
            }
        }
    }
    Ok(moved)
}

/// Whether a slot whose submit failed so stays due (Warden's own failure,
/// or one that passes: a tier down for now) rather than being recorded as
/// refused.
fn keeps_due(e: &Error) -> bool {
    e.is_ours() || e.passes() || matches!(e, Error::IsolationUnavailable(_))
}

/// Submits schedule `s`'s latest due slot and moves it on; whether this
/// call moved it (another node may have first).
async fn fire(st: &AppState, s: &ScheduleRecord, now: Millis) -> Result<bool> {
    let read = parse_cron(&s.cron).and_then(|cron| {
        let review: SubmitReview = serde_json::from_value(s.review.clone())
            .map_err(|e| Error::invalid(format!("its review: {e}")))?;
        Ok((cron, review))
    });
    let (cron, mut review) = match read {
        Ok(r) => r,
        Err(e) => {
            // Unreadable (changed by hand in the database?): paused, not
            // failed again every second.
            tracing::error!(schedule = %s.id, "a schedule cannot be read, so it is paused: {e}");
            st.meta
                .set_schedule_paused(&s.tenant_id, &s.id, true, s.next_run_at)
                .await?;
            return Ok(false);
        }
    };
    let slot = latest_slot(&cron, s.next_run_at, now)?;
    let run = |review_id: Option<String>, error: Option<String>| -> Result<ScheduleRun> {
        Ok(ScheduleRun {
            slot,
            // From the time the try ended, so a slow submit never leaves
            // the schedule due again at once.
            next: next_after(&cron, slot.max(now_ms()))?,
            review_id,
            error,
        })
    };
    // At most one run of a schedule waits in the queue: a slot that comes
    // while the previous run has not started is skipped.
    if let Some(prev) = s.last_review_id.as_deref().and_then(ReviewId::parse) {
        let queued = st.jobs.get_review(&s.tenant_id, &prev).await?;
        if queued.is_some_and(|j| j.status == ReviewStatus::Pending) {
            let why = format!("slot skipped: the previous run ({prev}) had not started yet");
            let r = run(None, Some(why))?;
            return Ok(st.meta.advance_schedule(&s.id, s.next_run_at, &r).await?);
        }
    }
    review.idempotency_key = Some(format!("schedule:{}:{slot}", s.id));
    review
        .labels
        .insert(LABEL_SCHEDULE.into(), s.id.to_string());
    review
        .labels
        .insert(LABEL_SLOT.into(), crate::api::time(slot));
    let caller = Caller {
        store: st.tenant_store(s.tenant_id.clone()),
        // What the audit log names as the submitter of each run.
        key_id: KeyId::from_stored(format!("schedule:{}", s.id)),
    };
    let disabled = caller.store.tenant().await?.is_none_or(|t| t.disabled);
    let outcome = match disabled {
        true => Err(Error::Forbidden("the tenant is disabled".into())),
        false => match tokio::time::timeout(SUBMIT_TIMEOUT, reviews::submit(st, &caller, &review))
            .await
        {
            Ok(submitted) => submitted.map(|(job, _)| job),
            Err(_) => Err(Error::internal(
                "submitting a scheduled review",
                "timed out",
            )),
        },
    };
    let r = match outcome {
        Ok(job) => run(Some(job.id.to_string()), None)?,
        Err(e) if keeps_due(&e) => return Err(e),
        // Refused (the command policy, a secret gone, the tenant
        // disabled...): recorded, and the schedule goes on.
        Err(e) => run(None, Some(e.into_message()))?,
    };
    Ok(st.meta.advance_schedule(&s.id, s.next_run_at, &r).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_slots_are_found_in_utc() {
        let c = parse_cron("0 6 * * MON").unwrap();
        // Thursday 2026-12-03 12:00 UTC -> Monday 2026-12-07 06:00 UTC.
        let t = Utc
            .with_ymd_and_hms(2026, 12, 3, 12, 0, 0)
            .unwrap()
            .timestamp_millis();
        let next = next_after(&c, t).unwrap();
        assert_eq!(crate::api::time(next), "2026-12-07T06:00:00.000Z");
        // Strictly after: a slot is not its own next.
        assert!(next_after(&c, next).unwrap() > next);
        // Seconds first with six fields; slots are whole seconds.
        let s = parse_cron("*/2 * * * * *").unwrap();
        assert_eq!(next_after(&s, 1_000).unwrap(), 2_000);
        assert_eq!(next_after(&s, 2_214).unwrap(), 4_000);
        for bad in ["", "* * *", "61 * * * *", "every day"] {
            assert!(parse_cron(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn missed_slots_collapse_into_the_latest() {
        let c = parse_cron("*/2 * * * * *").unwrap();
        // Due since 10 s, now 31.5 s: the slot at 30 s, once.
        assert_eq!(latest_slot(&c, 10_000, 31_500).unwrap(), 30_000);
        // Due now: that very slot.
        assert_eq!(latest_slot(&c, 30_000, 30_000).unwrap(), 30_000);
        assert_eq!(latest_slot(&c, 30_000, 31_999).unwrap(), 30_000);
    }
}

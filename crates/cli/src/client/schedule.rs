//! `warden schedule …`: review jobs submitted on a cron schedule (UTC),
//! each slot once; the runs are ordinary reviews (`warden review list`),
//! labelled `schedule=<id>`.

use super::http::Api;
use super::output::{self, field, Table};
use super::review::{submit_body, SubmitArgs};
use super::{Server, TenantAuth};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Create a schedule: the review's flags and command as for `warden
    /// review submit` (without --wait, --follow or --idempotency-key).
    Create {
        /// 1-63 of [A-Za-z0-9._-], unique among the tenant's schedules.
        #[arg(long)]
        name: String,
        /// When, in UTC: `minute hour day-of-month month day-of-week`
        /// (e.g. "0 6 * * MON"), or six fields with seconds first.
        #[arg(long)]
        cron: String,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        review: Box<SubmitArgs>,
    },
    /// List the schedules.
    List,
    /// Show one schedule.
    Show { id: String },
    /// Stop submitting (until resumed).
    Pause { id: String },
    /// Submit again, from the next slot after now.
    Resume { id: String },
    /// Delete a schedule (its past runs stay, as reviews).
    Rm { id: String },
}

/// The `CreateSchedule` body.
pub fn create_body(name: &str, cron: &str, paused: bool, review: &SubmitArgs) -> Result<Value> {
    if review.wait || review.follow || review.idempotency_key.is_some() {
        bail!("--wait, --follow and --idempotency-key do not apply to a schedule (each slot is its own review)");
    }
    Ok(json!({ "name": name, "cron": cron, "paused": paused, "review": submit_body(review)? }))
}

fn print_one(v: &Value) -> Result<()> {
    output::out(&format!(
        "{}\t{}\t{}\tnext {}\tlast {}{}\n",
        field(v, "id"),
        field(v, "name"),
        field(v, "cron"),
        field(v, "next_run_at"),
        field(v, "last_run_at"),
        match v.get("last_error").and_then(Value::as_str) {
            Some(e) => format!("\trefused: {e}"),
            None => String::new(),
        }
    ))
}

pub async fn run(a: ScheduleArgs) -> Result<i32> {
    let api = Api::tenant(&a.server, &a.auth)?;
    let as_json = a.server.json;
    let v = match a.command {
        ScheduleCommand::Create {
            name,
            cron,
            paused,
            review,
        } => {
            let body = create_body(&name, &cron, paused, &review)?;
            let rb = api.request(Method::POST, &["v1", "schedules"])?.json(&body);
            api.json(rb).await?
        }
        ScheduleCommand::List => {
            let v = api.get(&["v1", "schedules"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            let mut t = Table::new(&[
                "ID",
                "NAME",
                "CRON",
                "PAUSED",
                "NEXT",
                "LAST",
                "LAST REVIEW",
            ]);
            for s in output::items(&v)? {
                t.row(vec![
                    field(s, "id"),
                    field(s, "name"),
                    field(s, "cron"),
                    field(s, "paused"),
                    field(s, "next_run_at"),
                    field(s, "last_run_at"),
                    field(s, "last_review_id"),
                ]);
            }
            t.print()?;
            return Ok(0);
        }
        ScheduleCommand::Show { id } => api.get(&["v1", "schedules", &id], &[]).await?,
        ScheduleCommand::Pause { id } => {
            let rb = api.request(Method::POST, &["v1", "schedules", &id, "pause"])?;
            api.json(rb).await?
        }
        ScheduleCommand::Resume { id } => {
            let rb = api.request(Method::POST, &["v1", "schedules", &id, "resume"])?;
            api.json(rb).await?
        }
        ScheduleCommand::Rm { id } => {
            let v = api.delete(&["v1", "schedules", &id], &[]).await?;
            if as_json {
                output::json(&v)?;
            } else {
                output::out(&format!("deleted {id}\n"))?;
            }
            return Ok(0);
        }
    };
    if as_json {
        return output::json(&v).map(|_| 0);
    }
    print_one(&v)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_review_and_refuses_what_does_not_apply() {
        let review = SubmitArgs {
            command: vec!["wc".into(), "-l".into()],
            labels: vec!["team=ml".into()],
            ..Default::default()
        };
        let b = create_body("weekly", "0 6 * * MON", false, &review).unwrap();
        assert_eq!(b["cron"], "0 6 * * MON");
        assert_eq!(b["review"]["command"], json!(["wc", "-l"]));
        assert_eq!(b["review"]["labels"]["team"], "ml");
        for bad in [
            SubmitArgs {
                wait: true,
                ..review_of(&review)
            },
            SubmitArgs {
                follow: true,
                ..review_of(&review)
            },
            SubmitArgs {
                idempotency_key: Some("k".into()),
                ..review_of(&review)
            },
        ] {
            assert!(create_body("w", "* * * * *", false, &bad).is_err());
        }
    }

    fn review_of(r: &SubmitArgs) -> SubmitArgs {
        SubmitArgs {
            command: r.command.clone(),
            ..Default::default()
        }
    }
}

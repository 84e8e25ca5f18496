//! `warden review …`: review jobs (tenant key): a tenant's files plus a
//! command, run in a fresh sandbox; the outputs come back (`docs/api.md`,
//! "Review jobs"). Submitting lives in `review_submit.rs`, waiting and
//! logs in `review_wait.rs`, downloading outputs in `review_download.rs`,
//! what people see in `review_show.rs`.
//!
//! Exit status of `submit --wait`/`--follow`: 0 succeeded, 1 failed, 124
//! timed out, 130 cancelled (also when waiting is interrupted with Ctrl-C;
//! the job itself goes on); 125 for Warden's own errors.

#[path = "review_download.rs"]
mod download;
#[path = "review_show.rs"]
mod show;
#[path = "review_submit.rs"]
mod submit;
#[path = "review_wait.rs"]
mod wait;

pub use submit::{submit_body, SubmitArgs};

use super::http::Api;
use super::{output, Page, Server, TenantAuth};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReviewArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    auth: TenantAuth,
    #[command(subcommand)]
    command: ReviewCommand,
}

#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// Submit a job: stored files plus a command; prints its id.
    Submit(Box<SubmitArgs>),
    /// Show one job, with its outputs once it ended.
    Status { id: String },
    /// List jobs, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long, value_parser = ["pending", "running", "succeeded", "failed", "cancelled", "timed_out"])]
        status: Option<String>,
        #[command(flatten)]
        page: Page,
    },
    /// Print what the command printed (stdout and stderr, as they came;
    /// text, so --json changes nothing).
    Logs {
        id: String,
        /// Keep printing as the job prints, until it ends.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only this stream.
        #[arg(long, value_parser = ["stdout", "stderr"])]
        stream: Option<String>,
    },
    /// List a finished job's outputs, or download them all.
    Outputs {
        id: String,
        /// Download every output into DIR/<path> (made if missing; files
        /// there with the same paths are replaced).
        #[arg(long, value_name = "DIR")]
        download: Option<PathBuf>,
    },
    /// Cancel a job: a pending one at once, a running one is stopped.
    Cancel { id: String },
    /// Delete an ended job's outputs and log, giving their bytes back to
    /// the tenant's storage (the job's record stays).
    DeleteOutputs { id: String },
    /// List the webhook deliveries of a job.
    Webhooks { id: String },
    /// Show every connection attempt the job's sandbox made.
    Egress { id: String },
}

/// Whether a job in `status` is over (anything but pending/running, so a
/// state newer than this client does not keep `--wait` waiting forever).
pub fn is_terminal(status: &str) -> bool {
    !matches!(status, "pending" | "running")
}

/// This process's exit status for a job that ended in `status`.
pub fn exit_status(status: &str) -> Result<i32> {
    Ok(match status {
        "succeeded" => 0,
        "failed" => 1,
        "timed_out" => 124,
        "cancelled" => 130,
        "pending" | "running" => bail!("the job has not ended (it is {status})"),
        other => bail!("the job ended in a state this client does not know: {other:?}"),
    })
}

pub async fn run(a: ReviewArgs) -> Result<i32> {
    let as_json = a.server.json;
    // Check the flags before needing a key or a server.
    let body = match &a.command {
        ReviewCommand::Submit(s) => Some(submit_body(s)?),
        _ => None,
    };
    let api = Api::tenant(&a.server, &a.auth)?;
    match a.command {
        ReviewCommand::Submit(s) => {
            return submit::run(&api, &s, body.unwrap_or_default(), as_json).await
        }
        ReviewCommand::Status { id } => {
            let r = api.get(&["v1", "reviews", &id], &[]).await?;
            if as_json {
                return output::json(&r).map(|_| 0);
            }
            show::review(&r)?;
        }
        ReviewCommand::List { status, page } => {
            let mut query = Vec::new();
            if let Some(s) = status {
                query.push(("status", s));
            }
            query.extend(page.query());
            let v = api.get(&["v1", "reviews"], &query).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            show::reviews(output::items(&v)?).print()?;
            output::next_page_hint(&v, "--cursor");
        }
        ReviewCommand::Logs { id, follow, stream } => {
            wait::logs(&api, &id, stream.as_deref(), follow, &mut std::io::stdout()).await?;
        }
        ReviewCommand::Outputs { id, download } => {
            let v = api.get(&["v1", "reviews", &id, "outputs"], &[]).await?;
            let items = output::items(&v)?;
            let saved = match &download {
                Some(dir) => Some(download::all(&api, &id, items, dir, as_json).await?),
                None => None,
            };
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            match (&saved, &download) {
                (Some(saved), Some(dir)) => show::downloaded(saved, items, dir)?,
                _ => show::outputs(items).print()?,
            }
            if items.is_empty() {
                show::why_no_outputs(&api, &id).await;
            }
        }
        ReviewCommand::Cancel { id } => {
            let r = api.post_empty(&["v1", "reviews", &id, "cancel"]).await?;
            if as_json {
                return output::json(&r).map(|_| 0);
            }
            output::out(&format!("{}\n", show::cancelled(&id, &r)))?;
        }
        ReviewCommand::DeleteOutputs { id } => {
            let r = api.delete(&["v1", "reviews", &id, "outputs"], &[]).await?;
            if as_json {
                return output::json(&r).map(|_| 0);
            }
            output::out(&format!(
                "deleted {} outputs and the log of {id} ({} bytes freed)\n",
                r["outputs"], r["freed_bytes"]
            ))?;
        }
        ReviewCommand::Webhooks { id } => {
            let v = api.get(&["v1", "reviews", &id, "webhooks"], &[]).await?;
            if as_json {
                return output::json(&v).map(|_| 0);
            }
            show::deliveries(output::items(&v)?).print()?;
        }
        ReviewCommand::Egress { id } => {
            super::egress::print_log(&api, &["v1", "reviews", &id, "egress"], as_json).await?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_states_map_to_exit_statuses() {
        assert_eq!(exit_status("succeeded").unwrap(), 0);
        assert_eq!(exit_status("failed").unwrap(), 1);
        assert_eq!(exit_status("timed_out").unwrap(), 124);
        assert_eq!(exit_status("cancelled").unwrap(), 130);
        for s in ["pending", "running", "exploded", ""] {
            assert!(exit_status(s).is_err(), "{s:?}");
        }
        assert!(!is_terminal("pending") && !is_terminal("running"));
        for s in ["succeeded", "failed", "timed_out", "cancelled", "newer"] {
            assert!(is_terminal(s), "{s}");
        }
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        review: ReviewArgs,
    }

    fn parse(args: &[&str]) -> Result<ReviewArgs, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("review").chain(args.iter().copied())).map(|c| c.review)
    }

    #[test]
    fn submit_takes_its_command_after_the_flags() {
        let a = parse(&[
            "submit", "--file", "file_1", "--file", "file_2", "-e", "A=1", "--label", "k=v",
            "--wait", "--json", "--", "python", "x.py", "--json", "-e",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(a.server.json);
        let ReviewCommand::Submit(s) = a.command else {
            panic!("not submit")
        };
        assert_eq!(s.files, ["file_1", "file_2"]);
        assert_eq!(s.env, ["A=1"]);
        assert!(s.wait && !s.follow && !s.shell);
        assert_eq!(s.command, ["python", "x.py", "--json", "-e"]);
        assert!(
            parse(&["submit", "--wait"]).is_err(),
            "a command is required"
        );
    }

    #[test]
    fn subcommands_check_their_choices() {
        assert!(parse(&["logs", "rev_1", "--stream", "stdout", "-f"]).is_ok());
        assert!(parse(&["logs", "rev_1", "--stream", "both"]).is_err());
        assert!(parse(&["list", "--status", "timed_out", "--limit", "5"]).is_ok());
        assert!(parse(&["list", "--status", "done"]).is_err());
        assert!(parse(&["outputs", "rev_1", "--download", "out"]).is_ok());
    }
}

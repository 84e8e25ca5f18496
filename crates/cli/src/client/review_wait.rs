//! Waiting for a review job to end (polling `GET /v1/reviews/{id}` with a
//! spinner on stderr) and copying its log to a writer as it arrives.

use super::is_terminal;
use crate::client::http::{Api, ApiError};
use crate::client::note;
use anyhow::{anyhow, Result};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the job is asked about while waiting.
const POLL: Duration = Duration::from_millis(250);
/// How long the server may fail to answer in a row before waiting gives up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Waits for job `id` to end, first printing its log as it comes when
/// `follow` (on stdout, or stderr when `as_json` keeps stdout for the
/// answer). Returns the final Review, or `None` when interrupted (Ctrl-C).
pub async fn until_end(api: &Api, id: &str, follow: bool, as_json: bool) -> Result<Option<Value>> {
    let work = async {
        if follow {
            let result = if as_json {
                logs(api, id, None, true, &mut std::io::stderr()).await
            } else {
                logs(api, id, None, true, &mut std::io::stdout()).await
            };
            if let Err(e) = result {
                note(&format!("{e:#}; waiting for the job without its log"));
            }
        }
        let bar = spinner(as_json);
        bar.set_message(id.to_string());
        let end = poll(api, id, &bar).await;
        bar.finish_and_clear();
        end
    };
    tokio::select! {
        end = work => end.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
    }
}

/// A spinner on stderr with a message and the time spent, hidden when
/// stderr is not a terminal or when `quiet`.
fn spinner(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Asks about the job every [`POLL`] until it is over. A server that does
/// not answer (or answers 5xx) is asked again for up to [`GIVE_UP`].
async fn poll(api: &Api, id: &str, bar: &ProgressBar) -> Result<Value> {
    let mut failing_since: Option<Instant> = None;
    loop {
        match api.get(&["v1", "reviews", id], &[]).await {
            Ok(r) => {
                failing_since = None;
                let status = r
                    .get("status")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("unexpected answer from the server: no job status"))?;
                if is_terminal(status) {
                    return Ok(r);
                }
                bar.set_message(format!("{id} {status}"));
            }
            Err(e) if transient(&e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= GIVE_UP {
                    return Err(e.context(format!(
                        "gave up waiting for {id} after {}s without an answer",
                        GIVE_UP.as_secs()
                    )));
                }
                bar.set_message(format!("{id} (no answer from the server; retrying)"));
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a failed poll is worth repeating: the server was not reached or
/// answered 5xx (restarting, overloaded); not a 4xx.
fn transient(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<ApiError>() {
        Some(a) => a.status >= 500,
        None => true,
    }
}

/// `GET /v1/reviews/{id}/logs`: copies the text to `out` as it arrives,
/// flushing each piece. A reader that went away (`| head`) ends the copy
/// quietly.
pub async fn logs(
    api: &Api,
    id: &str,
    stream: Option<&str>,
    follow: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut query = Vec::new();
    if let Some(s) = stream {
        query.push(("stream", s.to_string()));
    }
    if follow {
        query.push(("follow", "true".to_string()));
    }
    let rb = api
        .request(Method::GET, &["v1", "reviews", id, "logs"])?
        .query(&query);
    let resp = api.send(rb).await?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| anyhow!("the log broke off: {}", api.transport(e)))?;
        match out.write_all(&chunk).and_then(|_| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(anyhow!(e).context("writing the log")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_side_failures_are_retried() {
        let api_err = |status| {
            anyhow::Error::from(ApiError {
                status,
                code: "x".into(),
                message: String::new(),
            })
        };
        assert!(transient(&api_err(503)));
        assert!(transient(&api_err(500)));
        assert!(!transient(&api_err(404)));
        assert!(!transient(&api_err(401)));
        assert!(transient(&anyhow!("connection reset")));
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_the_log_at_once() {
        // Nothing listens on port 9 of localhost.
        let api = Api::new("http://127.0.0.1:9", "wk_test").unwrap();
        let mut out = Vec::new();
        let e = logs(&api, "rev_1", None, false, &mut out)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("WARDEN_URL"), "{e}");
        assert!(out.is_empty());
    }
}

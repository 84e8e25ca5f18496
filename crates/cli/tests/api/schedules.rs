//! Schedules against a real server: a schedule's slots become ordinary
//! reviews that run to their end, one per slot across a kill -9 and a
//! restart, none while paused; the CLI drives it all; another tenant sees
//! nothing of it.

use crate::cli::{json_of, warden};
use crate::harness::*;
use crate::reviews::wait_done;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The tenant's reviews submitted by schedule `id`.
async fn runs(a: &Api, id: &str) -> Vec<Value> {
    let r = a.get("/v1/reviews?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["labels"]["schedule"] == id)
        .cloned()
        .collect()
}

async fn until_runs(a: &Api, id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = runs(a, id).await;
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} runs: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_reviews_run_once_per_slot() {
    let mut server = Server::start();
    let (_, a) = server.admin().tenant("sched", None).await;
    let key = a.token.clone();
    let (_, b) = server.admin().tenant("sched-other", None).await;

    // Created with the CLI, every two seconds.
    let s = json_of(&warden(
        &server,
        Some(&key),
        &[
            "schedule",
            "create",
            "--name",
            "tick",
            "--cron",
            "*/2 * * * * *",
            "--label",
            "team=ml",
            "--json",
            "--shell",
            "--",
            "echo",
            "tick",
            ">",
            "/output/t.txt",
        ],
    ));
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["paused"], false, "{s}");

    // Its runs are reviews that run to their end, with its labels.
    let got = until_runs(&a, &id, 2).await;
    let done = wait_done(&a, got[0]["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["labels"]["team"], "ml");

    // Killed and restarted: the slots go on, each still submitted once.
    server.kill9();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.restart();
    let a = Api::new(&server.url, &key);
    let b = Api::new(&server.url, &b.token);
    let before = runs(&a, &id).await.len();
    let after = until_runs(&a, &id, before + 2).await;
    let slots: BTreeSet<_> = after
        .iter()
        .map(|j| j["labels"]["schedule_slot"].to_string())
        .collect();
    assert_eq!(
        slots.len(),
        after.len(),
        "a slot submitted twice: {after:?}"
    );
    let keys: BTreeSet<_> = after
        .iter()
        .map(|j| j["idempotency_key"].to_string())
        .collect();
    assert_eq!(keys.len(), after.len());

    // Paused: nothing more; the CLI shows it so.
    let paused = json_of(&warden(
        &server,
        Some(&key),
        &["schedule", "pause", &id, "--json"],
    ));
    assert_eq!(paused["paused"], true);
    assert!(paused["next_run_at"].is_null());
    let n = runs(&a, &id).await.len();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(runs(&a, &id).await.len(), n, "runs while paused");
    let list = String::from_utf8_lossy(&warden(&server, Some(&key), &["schedule", "list"]).stdout)
        .to_string();
    assert!(list.contains("tick") && list.contains("yes"), "{list}");

    // Another tenant: nothing, by id.
    refused(
        &b.get(&format!("/v1/schedules/{id}")).await,
        404,
        "not_found",
    );
    refused(
        &b.post(&format!("/v1/schedules/{id}/resume"), json!({}))
            .await,
        404,
        "not_found",
    );
    refused(
        &b.delete(&format!("/v1/schedules/{id}")).await,
        404,
        "not_found",
    );
    assert_eq!(b.get("/v1/schedules").await.body["items"], json!([]));

    // Bad input answers 400 naming the field.
    let m = refused(
        &a.post(
            "/v1/schedules",
            json!({"name": "x", "cron": "every day", "review": {"shell": "true"}}),
        )
        .await,
        400,
        "bad_request",
    );
    assert!(m.contains("cron"), "{m}");

    assert!(warden(&server, Some(&key), &["schedule", "rm", &id])
        .status
        .success());
    refused(
        &a.get(&format!("/v1/schedules/{id}")).await,
        404,
        "not_found",
    );
    let created = audited(&a, "schedule.create").await;
    assert!(
        created.iter().any(|(_, t, o)| t == &id && o == "ok"),
        "{created:?}"
    );
    let submits = audited(&a, "review.submit").await;
    let by_schedule = format!("schedule:{id}");
    assert!(
        submits.iter().any(|(actor, _, _)| actor == &by_schedule),
        "{submits:?}"
    );
}

//! Schedules in process, over a real SQLite database shared by two server
//! states (two nodes): each slot of a schedule is submitted once however
//! the nodes' scheduler ticks race, slots missed while nothing ran collapse
//! into the latest, a paused schedule submits nothing, a refused slot is
//! recorded and the schedule goes on, and another tenant cannot see it.

mod common;

use common::{caller, world, Init};
use std::time::Duration;
use warden_server::api_reviews::SubmitReview;
use warden_server::service::{reviews, schedules};
use warden_server::state::Shared;
use warden_store::jobs::ReviewRecord;
use warden_store::{now_ms, Quotas};

/// The reviews submitted for schedule `id`, by slot.
async fn runs(st: &Shared, who: &warden_server::auth::Caller, id: &str) -> Vec<ReviewRecord> {
    let page = reviews::list(st, who, None, None, 1000)
        .await
        .expect("list");
    let prefix = format!("schedule:{id}:");
    let mut runs: Vec<_> = page
        .items
        .into_iter()
        .filter(|r| {
            r.idempotency_key
                .as_deref()
                .is_some_and(|k| k.starts_with(&prefix))
        })
        .collect();
    runs.sort_by_key(|r| r.idempotency_key.clone());
    runs
}

/// Both nodes tick at once, `n` times.
async fn race(a: &Shared, b: &Shared, n: usize) {
    let (mut ba, mut bb) = (schedules::Backoff::new(), schedules::Backoff::new());
    for _ in 0..n {
        let (x, y) = tokio::join!(
            schedules::fire_due(a, &mut ba),
            schedules::fire_due(b, &mut bb)
        );
        x.expect("node a's tick");
        y.expect("node b's tick");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_slot_is_submitted_once_by_racing_nodes() {
    let w = world(Init::Handshake, 8).await;
    let (node_a, node_b) = (common::app(&w, |_| {}), common::app(&w, |_| {}));
    let store = w.tenant("sched", Quotas::default()).await;
    let who = caller(&store);
    let review: SubmitReview =
        serde_json::from_value(serde_json::json!({"shell": "true", "labels": {"team": "ml"}}))
            .unwrap();

    let s = schedules::create(&node_a, &who, "every-2s", "*/2 * * * * *", &review, false)
        .await
        .expect("created");
    assert!(s.next_run_at > now_ms() && s.next_run_at <= now_ms() + 2_000);
    let id = s.id.to_string();

    // Missed slots (ten seconds of them) collapse into the latest, once.
    w.meta
        .set_schedule_paused(store.tenant_id(), &s.id, false, now_ms() - 10_000)
        .await
        .unwrap();
    race(&node_a, &node_b, 3).await;
    let first = runs(&node_a, &who, &id).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let slot: i64 = first[0]
        .idempotency_key
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(now_ms() - slot < 2_500 && slot % 2_000 == 0, "slot {slot}");
    let spec: SubmitReview = serde_json::from_value(first[0].spec.clone()).unwrap();
    assert_eq!(spec.labels["schedule"], id);
    assert_eq!(spec.labels["team"], "ml");
    let now = schedules::find(&node_a, &who, &id).await.unwrap();
    assert_eq!(now.last_review_id.as_deref(), Some(first[0].id.as_str()));
    assert!(now.next_run_at > slot && now.last_error.is_none());

    // The next slot comes while that run waits in the queue (no worker
    // runs here): skipped, and said so.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    race(&node_a, &node_b, 2).await;
    assert_eq!(runs(&node_a, &who, &id).await.len(), 1);
    let skipped = schedules::find(&node_a, &who, &id).await.unwrap();
    assert!(
        skipped
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("had not started")),
        "{skipped:?}"
    );

    // Once it has left the queue, the next slot: one more review, from
    // whichever node got it.
    reviews::cancel(&node_a, &who, first[0].id.as_str())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    race(&node_a, &node_b, 3).await;
    let second = runs(&node_a, &who, &id).await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert_ne!(second[0].idempotency_key, second[1].idempotency_key);

    for r in &second {
        let _ = reviews::cancel(&node_a, &who, r.id.as_str()).await;
    }
    // Paused: nothing, however long; resumed: from the next slot on.
    schedules::set_paused(&node_a, &who, &id, true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    race(&node_a, &node_b, 2).await;
    assert_eq!(runs(&node_a, &who, &id).await.len(), 2);
    let resumed = schedules::set_paused(&node_b, &who, &id, false)
        .await
        .unwrap();
    assert!(
        resumed.next_run_at > now_ms() - 50,
        "missed slots of a pause are not submitted"
    );

    // A slot refused (the tenant disabled) is recorded, and the schedule
    // moves on rather than retrying it forever.
    w.meta
        .set_tenant_disabled(store.tenant_id(), true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    race(&node_a, &node_b, 2).await;
    let refused = schedules::find(&node_a, &who, &id).await.unwrap();
    assert!(
        refused
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("disabled")),
        "{refused:?}"
    );
    assert!(refused.next_run_at > now_ms() - 50);
    assert_eq!(runs(&node_a, &who, &id).await.len(), 2);
    w.meta
        .set_tenant_disabled(store.tenant_id(), false)
        .await
        .unwrap();

    // Another tenant: not found, by id, for every call.
    let other = caller(&w.tenant("other", Quotas::default()).await);
    assert!(schedules::find(&node_a, &other, &id).await.is_err());
    assert!(schedules::delete(&node_a, &other, &id).await.is_err());
    assert!(schedules::set_paused(&node_a, &other, &id, true)
        .await
        .is_err());
    assert!(schedules::list(&node_a, &other).await.unwrap().is_empty());

    // Refused at create: a bad cron, a review that sets the schedule's own
    // fields, a taken name.
    for (name, cron, body) in [
        (
            "bad-cron",
            "61 * * * *",
            serde_json::json!({"shell": "true"}),
        ),
        (
            "keyed",
            "* * * * *",
            serde_json::json!({"shell": "true", "idempotency_key": "k"}),
        ),
        ("no-command", "* * * * *", serde_json::json!({})),
        (
            "every-2s",
            "* * * * *",
            serde_json::json!({"shell": "true"}),
        ),
    ] {
        let r: SubmitReview = serde_json::from_value(body).unwrap();
        assert!(
            schedules::create(&node_a, &who, name, cron, &r, false)
                .await
                .is_err(),
            "{name} accepted"
        );
    }
    schedules::delete(&node_a, &who, &id).await.unwrap();
    assert!(schedules::list(&node_a, &who).await.unwrap().is_empty());
    // Its runs stay, as reviews.
    assert_eq!(runs(&node_a, &who, &id).await.len(), 2);

    // 70 creates racing on both nodes: exactly the 64 a tenant may keep.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..70 {
        let st = if i % 2 == 0 {
            node_a.clone()
        } else {
            node_b.clone()
        };
        let (who, review) = (caller(&store), review.clone());
        tasks.spawn(async move {
            schedules::create(&st, &who, &format!("s{i}"), "0 6 * * MON", &review, true).await
        });
    }
    let (mut made, mut quota) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => made += 1,
            Err(e) => {
                assert_eq!(e.code(), "quota_exceeded", "{e}");
                quota += 1;
            }
        }
    }
    assert_eq!((made, quota), (schedules::MAX_PER_TENANT, 6));
}

//! SqliteMeta sandbox records on a real database file.

use std::collections::BTreeMap;
use warden_store::sqlite::{self, SqliteMeta};
use warden_store::*;

async fn open_db() -> (tempfile::TempDir, SqliteMeta) {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite::open(&dir.path().join("meta.db")).await.unwrap();
    (dir, db)
}

fn sandbox(
    tenant: &TenantId,
    owner: &str,
    created_at: Millis,
    labels: &[(&str, &str)],
) -> SandboxRecord {
    SandboxRecord {
        id: SandboxId::generate(),
        tenant_id: tenant.clone(),
        state: SandboxState::Running,
        spec: serde_json::json!({"image": "python:3.12", "env": ["HOME"]}),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        memory_bytes: 256 << 20,
        owner: owner.into(),
        created_at,
        expires_at: created_at + 60_000,
        ended_at: None,
        end_reason: None,
        usage: None,
    }
}

fn ids(page: &Page<SandboxRecord>) -> Vec<SandboxId> {
    page.items.iter().map(|s| s.id.clone()).collect()
}

#[tokio::test]
async fn insert_get_list_with_filters() {
    let (_dir, db) = open_db().await;
    let t = db.create_tenant("a", Quotas::default()).await.unwrap().id;
    // Label keys and values with characters that would break a JSON path or
    // naive SQL building.
    let tricky = ("a.b\"c", "it's $.x");
    let s1 = sandbox(&t, "srv1", 1, &[("team", "ml"), ("env", "prod")]);
    let s2 = sandbox(&t, "srv1", 2, &[("team", "ml"), ("env", "dev")]);
    let s3 = sandbox(&t, "srv1", 3, &[("team", "web"), tricky]);
    let s4 = sandbox(&t, "srv1", 4, &[]);
    for s in [&s1, &s2, &s3, &s4] {
        db.insert_sandbox(s).await.unwrap();
    }
    assert_eq!(db.get_sandbox(&t, &s1.id).await.unwrap(), Some(s1.clone()));
    assert_eq!(
        db.get_sandbox(&t, &SandboxId::generate()).await.unwrap(),
        None
    );
    assert!(matches!(
        db.insert_sandbox(&s1).await,
        Err(StoreError::Conflict(_))
    ));

    let all = SandboxFilter::default();
    let page = db.list_sandboxes(&t, &all, None, 100).await.unwrap();
    assert_eq!(
        page.items,
        vec![s1.clone(), s2.clone(), s3.clone(), s4.clone()]
    );

    let p1 = db.list_sandboxes(&t, &all, None, 3).await.unwrap();
    assert_eq!(ids(&p1), vec![s1.id.clone(), s2.id.clone(), s3.id.clone()]);
    let p2 = db
        .list_sandboxes(&t, &all, p1.next.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!((ids(&p2), p2.next), (vec![s4.id.clone()], None));

    // Newest first, paged the same way.
    let newest = SandboxFilter {
        newest_first: true,
        ..SandboxFilter::default()
    };
    let n1 = db.list_sandboxes(&t, &newest, None, 3).await.unwrap();
    assert_eq!(ids(&n1), vec![s4.id.clone(), s3.id.clone(), s2.id.clone()]);
    let n2 = db
        .list_sandboxes(&t, &newest, n1.next.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!((ids(&n2), n2.next), (vec![s1.id.clone()], None));

    let by = |pairs: &[(&str, &str)], state: Option<SandboxState>| SandboxFilter {
        states: state.into_iter().collect(),
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        newest_first: false,
    };
    let ml = db
        .list_sandboxes(&t, &by(&[("team", "ml")], None), None, 100)
        .await
        .unwrap();
    assert_eq!(ids(&ml), vec![s1.id.clone(), s2.id.clone()]);
    let ml_prod = by(&[("team", "ml"), ("env", "prod")], None);
    let got = db.list_sandboxes(&t, &ml_prod, None, 100).await.unwrap();
    assert_eq!(ids(&got), vec![s1.id.clone()], "every pair must match");
    let got = db
        .list_sandboxes(&t, &by(&[tricky], None), None, 100)
        .await
        .unwrap();
    assert_eq!(ids(&got), vec![s3.id.clone()]);
    let got = db
        .list_sandboxes(&t, &by(&[("team", "nope")], None), None, 100)
        .await
        .unwrap();
    assert!(got.items.is_empty());

    // Filtered listings page too.
    let p1 = db
        .list_sandboxes(&t, &by(&[("team", "ml")], None), None, 1)
        .await
        .unwrap();
    assert_eq!(ids(&p1), vec![s1.id.clone()]);
    let p2 = db
        .list_sandboxes(&t, &by(&[("team", "ml")], None), p1.next.as_deref(), 1)
        .await
        .unwrap();
    assert_eq!((ids(&p2), p2.next), (vec![s2.id.clone()], None));

    assert!(db
        .end_sandbox(&t, &s2.id, SandboxState::Stopped, "deleted", None)
        .await
        .unwrap());
    let running = by(&[], Some(SandboxState::Running));
    let got = db.list_sandboxes(&t, &running, None, 100).await.unwrap();
    assert_eq!(ids(&got), vec![s1.id.clone(), s3.id.clone(), s4.id.clone()]);
    let stopped_ml = by(&[("team", "ml")], Some(SandboxState::Stopped));
    let got = db.list_sandboxes(&t, &stopped_ml, None, 100).await.unwrap();
    assert_eq!(ids(&got), vec![s2.id.clone()]);

    // Several states at once, newest first and paged (E2B's
    // `state=running,paused`).
    assert!(db
        .end_sandbox(&t, &s4.id, SandboxState::Paused, "paused", None)
        .await
        .unwrap());
    let either = SandboxFilter {
        states: vec![SandboxState::Running, SandboxState::Paused],
        newest_first: true,
        ..SandboxFilter::default()
    };
    let p1 = db.list_sandboxes(&t, &either, None, 1).await.unwrap();
    assert_eq!(ids(&p1), vec![s4.id.clone()]);
    let rest = db
        .list_sandboxes(&t, &either, p1.next.as_deref(), 100)
        .await
        .unwrap();
    assert_eq!(
        (ids(&rest), rest.next),
        (vec![s3.id.clone(), s1.id.clone()], None)
    );
}

#[tokio::test]
async fn expiry_end_and_totals() {
    let (_dir, db) = open_db().await;
    let t = db.create_tenant("a", Quotas::default()).await.unwrap().id;
    let s1 = sandbox(&t, "srv", 1, &[]);
    let mut s2 = sandbox(&t, "srv", 2, &[]);
    s2.memory_bytes = 1 << 30;
    db.insert_sandbox(&s1).await.unwrap();
    db.insert_sandbox(&s2).await.unwrap();
    assert_eq!(
        db.running_totals(&t).await.unwrap(),
        (2, (256 << 20) + (1 << 30))
    );

    assert!(db.set_sandbox_expiry(&t, &s1.id, 999_999).await.unwrap());
    assert_eq!(
        db.get_sandbox(&t, &s1.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        999_999
    );
    assert!(!db
        .set_sandbox_expiry(&t, &SandboxId::generate(), 1)
        .await
        .unwrap());

    let usage = Usage {
        cpu_seconds: 1.5,
        peak_memory_bytes: 100 << 20,
        wall_seconds: 12.25,
    };
    let before = now_ms();
    assert!(db
        .end_sandbox(&t, &s1.id, SandboxState::TimedOut, "timeout", Some(usage))
        .await
        .unwrap());
    assert!(
        !db.end_sandbox(&t, &s1.id, SandboxState::Stopped, "again", None)
            .await
            .unwrap(),
        "ending twice is refused"
    );
    let ended = db.get_sandbox(&t, &s1.id).await.unwrap().unwrap();
    assert_eq!(ended.state, SandboxState::TimedOut);
    assert_eq!(ended.end_reason.as_deref(), Some("timeout"));
    assert_eq!(ended.usage, Some(usage));
    assert!(ended.ended_at.unwrap() >= before);
    // An ended sandbox no longer counts, and cannot be extended.
    assert_eq!(db.running_totals(&t).await.unwrap(), (1, 1 << 30));
    assert!(!db.set_sandbox_expiry(&t, &s1.id, 5).await.unwrap());
    assert_eq!(
        db.running_totals(&TenantId::generate()).await.unwrap(),
        (0, 0)
    );
}

#[tokio::test]
async fn reap_foreign_marks_only_other_owners_running_sandboxes() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap().id;
    let b = db.create_tenant("b", Quotas::default()).await.unwrap().id;
    let old_a = sandbox(&a, "old-server", 1, &[]);
    let old_b = sandbox(&b, "old-server", 2, &[]);
    let mine = sandbox(&a, "new-server", 3, &[]);
    let old_ended = sandbox(&a, "old-server", 4, &[]);
    for s in [&old_a, &old_b, &mine, &old_ended] {
        db.insert_sandbox(s).await.unwrap();
    }
    db.end_sandbox(&a, &old_ended.id, SandboxState::Stopped, "deleted", None)
        .await
        .unwrap();

    let before = now_ms();
    let reaped = db.reap_foreign("new-server").await.unwrap();
    let reaped_ids: Vec<_> = reaped.iter().map(|s| s.id.clone()).collect();
    assert_eq!(reaped_ids, vec![old_a.id.clone(), old_b.id.clone()]);
    for s in &reaped {
        assert_eq!(s.state, SandboxState::Lost);
        assert_eq!(s.end_reason.as_deref(), Some("server restarted"));
        assert!(s.ended_at.unwrap() >= before);
    }
    assert_eq!(
        db.get_sandbox(&b, &old_b.id).await.unwrap().unwrap().state,
        SandboxState::Lost
    );
    let mine_now = db.get_sandbox(&a, &mine.id).await.unwrap().unwrap();
    assert_eq!(mine_now.state, SandboxState::Running);
    let ended_now = db.get_sandbox(&a, &old_ended.id).await.unwrap().unwrap();
    assert_eq!(ended_now.state, SandboxState::Stopped);
    assert!(db.reap_foreign("new-server").await.unwrap().is_empty());
}

#[tokio::test]
async fn usage_between_sums_ended_sandboxes_in_window() {
    let (_dir, db) = open_db().await;
    let t = db.create_tenant("a", Quotas::default()).await.unwrap().id;
    let other = db.create_tenant("b", Quotas::default()).await.unwrap().id;
    let u = |cpu: f64, peak: u64, wall: f64| Usage {
        cpu_seconds: cpu,
        peak_memory_bytes: peak,
        wall_seconds: wall,
    };
    let s1 = sandbox(&t, "srv", 1, &[]);
    let s2 = sandbox(&t, "srv", 2, &[]);
    let no_usage = sandbox(&t, "srv", 3, &[]);
    let still_running = sandbox(&t, "srv", 4, &[]);
    let foreign = sandbox(&other, "srv", 5, &[]);
    for s in [&s1, &s2, &no_usage, &still_running, &foreign] {
        db.insert_sandbox(s).await.unwrap();
    }
    let from = now_ms();
    db.end_sandbox(
        &t,
        &s1.id,
        SandboxState::Stopped,
        "x",
        Some(u(1.0, 10, 2.0)),
    )
    .await
    .unwrap();
    db.end_sandbox(&t, &s2.id, SandboxState::Failed, "x", Some(u(0.5, 30, 4.0)))
        .await
        .unwrap();
    db.end_sandbox(&t, &no_usage.id, SandboxState::Stopped, "x", None)
        .await
        .unwrap();
    db.end_sandbox(
        &other,
        &foreign.id,
        SandboxState::Stopped,
        "x",
        Some(u(9.0, 99, 9.0)),
    )
    .await
    .unwrap();
    let to = now_ms() + 1;

    let sum = db.usage_between(&t, from, to).await.unwrap();
    assert_eq!(
        sum,
        UsageSum {
            sandboxes: 2,
            cpu_seconds: 1.5,
            wall_seconds: 6.0,
            max_peak_memory_bytes: 30,
        }
    );
    // The window is [from, to): nothing ended at or after `to`, or before `from`.
    assert_eq!(
        db.usage_between(&t, to, to + 1_000).await.unwrap(),
        UsageSum::default()
    );
    assert_eq!(
        db.usage_between(&t, 0, from).await.unwrap(),
        UsageSum::default()
    );
}

#[tokio::test]
async fn tenants_cannot_reach_each_others_sandboxes() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap().id;
    let b = db.create_tenant("b", Quotas::default()).await.unwrap().id;
    let sa = sandbox(&a, "srv", 1, &[("team", "ml")]);
    db.insert_sandbox(&sa).await.unwrap();

    assert_eq!(db.get_sandbox(&b, &sa.id).await.unwrap(), None);
    let all = SandboxFilter::default();
    assert!(db
        .list_sandboxes(&b, &all, None, 100)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(db
        .list_sandboxes(&b, &all, Some(sa.id.as_str()), 100)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(!db.set_sandbox_expiry(&b, &sa.id, 1).await.unwrap());
    assert!(!db
        .end_sandbox(&b, &sa.id, SandboxState::Stopped, "x", None)
        .await
        .unwrap());
    assert_eq!(db.running_totals(&b).await.unwrap(), (0, 0));
    // Untouched for A.
    assert_eq!(db.get_sandbox(&a, &sa.id).await.unwrap(), Some(sa));
}

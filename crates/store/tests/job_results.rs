//! What a review job leaves on a real database file: its outputs (and
//! their deletion by the tenant), webhook deliveries, the tenant's webhook
//! secret, and the removal of it all with the tenant.

use warden_store::jobs::*;
use warden_store::*;

mod common;
use common::*;

fn output(review: &ReviewRecord, path: &str) -> OutputRecord {
    OutputRecord {
        review_id: review.id.clone(),
        tenant_id: review.tenant_id.clone(),
        path: path.into(),
        object_id: OutputId::generate(),
        size: path.len() as u64,
        sha256: "ab".repeat(32),
    }
}

#[tokio::test]
async fn outputs_crud_and_isolation() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let job = submit(&db, &review(&a, 1, None)).await;
    let b_job = submit(&db, &review(&b, 1, None)).await;
    let mut outs = Vec::new();
    for p in ["report/z.json", "a.txt", "report/a.json"] {
        let o = output(&job, p);
        db.insert_output(&o).await.unwrap();
        outs.push(o);
    }
    db.insert_output(&output(&b_job, "a.txt")).await.unwrap();
    outs.sort_by(|x, y| x.path.cmp(&y.path));
    assert_eq!(db.list_outputs(&a, &job.id).await.unwrap(), outs);
    assert_eq!(
        db.get_output(&a, &job.id, "a.txt").await.unwrap(),
        Some(outs[0].clone())
    );
    assert_eq!(db.get_output(&a, &job.id, "missing").await.unwrap(), None);

    // Same path twice is a conflict.
    assert!(matches!(
        db.insert_output(&output(&job, "a.txt")).await,
        Err(StoreError::Conflict(_))
    ));
    // B sees none of A's outputs, and cannot attach any to A's job.
    assert_eq!(db.list_outputs(&b, &job.id).await.unwrap(), vec![]);
    assert_eq!(db.get_output(&b, &job.id, "a.txt").await.unwrap(), None);
    let mut forged = output(&job, "evil.txt");
    forged.tenant_id = b.clone();
    assert!(matches!(
        db.insert_output(&forged).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(db.clear_outputs(&b, &job.id).await.unwrap(), vec![]);
    assert_eq!(db.list_outputs(&a, &job.id).await.unwrap().len(), 3);

    let mut want: Vec<_> = outs.iter().map(|o| o.object_id.clone()).collect();
    want.sort();
    assert_eq!(db.clear_outputs(&a, &job.id).await.unwrap(), want);
    assert_eq!(db.list_outputs(&a, &job.id).await.unwrap(), vec![]);
    assert_eq!(db.clear_outputs(&a, &job.id).await.unwrap(), vec![]);
    assert_eq!(db.list_outputs(&b, &b_job.id).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_secret_is_stable_and_per_tenant() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    // Concurrent first uses agree.
    let (s1, s2, s3) = tokio::join!(
        db.webhook_secret(&a),
        db.webhook_secret(&a),
        db.webhook_secret(&a)
    );
    let s = s1.unwrap();
    assert_eq!((s2.unwrap(), s3.unwrap()), (s.clone(), s.clone()));
    assert_eq!(s.len(), 64);
    assert!(s
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(db.webhook_secret(&a).await.unwrap(), s);
    assert_ne!(db.webhook_secret(&b).await.unwrap(), s);
    assert!(matches!(
        db.webhook_secret(&TenantId::generate()).await,
        Err(StoreError::NotFound(_))
    ));
}

fn delivery(review: &ReviewRecord, created_at: Millis, next_attempt_at: Millis) -> DeliveryRecord {
    DeliveryRecord {
        id: DeliveryId::generate(),
        tenant_id: review.tenant_id.clone(),
        review_id: review.id.clone(),
        url: "https://example.com/hook".into(),
        body: format!("{{\"review\":\"{}\"}}", review.id),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        next_attempt_at,
        created_at,
        delivered_at: None,
    }
}

#[tokio::test]
async fn deliveries_due_update_list() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let job = submit(&db, &review(&a, 1, None)).await;
    let b_job = submit(&db, &review(&b, 1, None)).await;
    let d1 = delivery(&job, 10, 300);
    let d2 = delivery(&job, 20, 100);
    let d3 = delivery(&b_job, 5, 200);
    let d4 = delivery(&job, 30, 5000);
    for d in [&d1, &d2, &d3, &d4] {
        db.insert_delivery(d).await.unwrap();
    }
    assert!(matches!(
        db.insert_delivery(&d1).await,
        Err(StoreError::Conflict(_))
    ));
    let mut forged = delivery(&job, 1, 1);
    forged.tenant_id = b.clone();
    assert!(matches!(
        db.insert_delivery(&forged).await,
        Err(StoreError::NotFound(_))
    ));

    // Due: pending, in next-attempt order, across tenants.
    let due = db.due_deliveries(1000, 10).await.unwrap();
    assert_eq!(due, vec![d2.clone(), d3.clone(), d1.clone()]);
    assert_eq!(db.due_deliveries(1000, 1).await.unwrap(), vec![d2.clone()]);
    assert_eq!(db.due_deliveries(99, 10).await.unwrap(), vec![]);

    // A failed attempt backs off; a success stops it.
    let mut retry = d2.clone();
    retry.attempts = 1;
    retry.last_status_code = Some(503);
    retry.last_error = Some("service unavailable".into());
    retry.next_attempt_at = 2000;
    db.update_delivery(&retry).await.unwrap();
    let mut ok = d1.clone();
    ok.status = DeliveryStatus::Delivered;
    ok.attempts = 1;
    ok.last_status_code = Some(204);
    ok.delivered_at = Some(1000);
    db.update_delivery(&ok).await.unwrap();
    let mut gave_up = d3.clone();
    gave_up.status = DeliveryStatus::Failed;
    gave_up.attempts = 8;
    gave_up.last_error = Some("connection refused".into());
    db.update_delivery(&gave_up).await.unwrap();
    assert_eq!(db.due_deliveries(1000, 10).await.unwrap(), vec![]);
    assert_eq!(
        db.due_deliveries(2000, 10).await.unwrap(),
        vec![retry.clone()]
    );

    // Listing: by creation, the tenant's own only.
    assert_eq!(
        db.list_deliveries(&a, &job.id).await.unwrap(),
        vec![ok, retry, d4]
    );
    assert_eq!(
        db.list_deliveries(&b, &b_job.id).await.unwrap(),
        vec![gave_up]
    );
    assert_eq!(db.list_deliveries(&b, &job.id).await.unwrap(), vec![]);
    // An update cannot reach across tenants.
    let mut cross = d1.clone();
    cross.tenant_id = b.clone();
    cross.status = DeliveryStatus::Failed;
    db.update_delivery(&cross).await.unwrap();
    assert_eq!(
        db.list_deliveries(&a, &job.id).await.unwrap()[0].status,
        DeliveryStatus::Delivered
    );
}

#[tokio::test]
async fn delete_tenant_removes_its_jobs_data() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let mut keep = None;
    for t in [&a, &b] {
        let job = submit(&db, &review(t, 1, Some("k"))).await;
        submit(&db, &review(t, 2, None)).await;
        db.insert_output(&output(&job, "out.txt")).await.unwrap();
        db.insert_delivery(&delivery(&job, 1, 1)).await.unwrap();
        db.webhook_secret(t).await.unwrap();
        if *t == b {
            keep = Some(job);
        }
    }
    let b_job = keep.unwrap();
    let b_secret = db.webhook_secret(&b).await.unwrap();
    // One running job, so a lease is in the way too.
    claim(&db, "n1", 1000, 5).await.unwrap();

    assert!(db.delete_tenant(&a).await.unwrap());
    for table in [
        "reviews",
        "review_outputs",
        "webhook_deliveries",
        "tenant_secrets",
    ] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?"))
                .bind(a.as_str())
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    assert_eq!(db.review_counts(&a).await.unwrap(), (0, 0));
    assert!(matches!(
        db.webhook_secret(&a).await,
        Err(StoreError::NotFound(_))
    ));

    // B is untouched.
    assert_eq!(
        db.list_reviews(&b, &ReviewFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(db.list_outputs(&b, &b_job.id).await.unwrap().len(), 1);
    assert_eq!(db.list_deliveries(&b, &b_job.id).await.unwrap().len(), 1);
    assert_eq!(db.due_deliveries(1000, 10).await.unwrap().len(), 1);
    assert_eq!(db.webhook_secret(&b).await.unwrap(), b_secret);
}

#[tokio::test]
async fn a_tenant_deletes_an_ended_jobs_outputs_and_log() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let job = submit(&db, &review(&a, 1, None)).await;
    db.insert_output(&output(&job, "report.html"))
        .await
        .unwrap();
    db.insert_output(&output(&job, "manifest.json"))
        .await
        .unwrap();
    let outputs = db.list_outputs(&a, &job.id).await.unwrap();
    let output_bytes: u64 = outputs.iter().map(|o| o.size).sum();
    // Still running: its outputs are not all made yet.
    let claimed = claim(&db, "n1", 1000, 5).await.unwrap();
    assert_eq!(claimed.id, job.id);
    assert_eq!(
        db.delete_outputs(&a, &job.id, 2000).await.unwrap(),
        OutputsDeleted::NotEnded(ReviewStatus::Running)
    );
    let mut done = end(ReviewStatus::Succeeded);
    done.storage.log_bytes = 500;
    assert!(db.finish_review(&job.id, "n1", &done).await.unwrap());
    assert_eq!(
        db.storage_bytes(&a).await.unwrap(),
        output_bytes + 500,
        "outputs and the log count"
    );
    assert!(db
        .object_referenced(&a, ObjectKind::Logs, job.id.as_str())
        .await
        .unwrap());
    // Another tenant cannot name it.
    assert_eq!(
        db.delete_outputs(&b, &job.id, 2000).await.unwrap(),
        OutputsDeleted::NoJob
    );
    let mut ids: Vec<OutputId> = outputs.iter().map(|o| o.object_id.clone()).collect();
    ids.sort();
    assert_eq!(
        db.delete_outputs(&a, &job.id, 3000).await.unwrap(),
        OutputsDeleted::Deleted {
            outputs: ids,
            bytes: output_bytes + 500
        }
    );
    assert_eq!(db.storage_bytes(&a).await.unwrap(), 0);
    assert_eq!(db.list_outputs(&a, &job.id).await.unwrap(), vec![]);
    let r = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!((r.outputs_deleted_at, r.storage.log_bytes), (Some(3000), 0));
    assert_eq!(r.status, ReviewStatus::Succeeded, "the record stays");
    // Its log is no longer referenced: the start-up sweep may remove it.
    assert!(!db
        .object_referenced(&a, ObjectKind::Logs, job.id.as_str())
        .await
        .unwrap());
    // Again: nothing more, and the first time stays the time.
    assert_eq!(
        db.delete_outputs(&a, &job.id, 4000).await.unwrap(),
        OutputsDeleted::Deleted {
            outputs: vec![],
            bytes: 0
        }
    );
    let r = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(r.outputs_deleted_at, Some(3000));
}

//! SqliteMeta's review queue on a real database file: submits, listings,
//! leases, retries, cancels (claims between tenants are in `job_claims.rs`,
//! a job's results in `job_results.rs`).

use warden_store::jobs::*;
use warden_store::*;

mod common;
use common::*;

#[tokio::test]
async fn submit_is_idempotent_per_tenant() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;

    let first = review(&a, 1, Some("build-42"));
    let (stored, created) = db.submit_review(&first).await.unwrap();
    assert!(created);
    assert_eq!(stored, first);
    assert_eq!(
        db.get_review(&a, &first.id).await.unwrap(),
        Some(first.clone())
    );

    // The same key again: nothing inserted, the first job returned.
    let again = review(&a, 2, Some("build-42"));
    let (stored, created) = db.submit_review(&again).await.unwrap();
    assert!(!created);
    assert_eq!(stored, first);
    assert_eq!(db.get_review(&a, &again.id).await.unwrap(), None);

    // The same key on another tenant is another job.
    let other = review(&b, 3, Some("build-42"));
    let (stored, created) = db.submit_review(&other).await.unwrap();
    assert!(created);
    assert_eq!(stored.id, other.id);

    // No key: never deduplicated.
    submit(&db, &review(&a, 4, None)).await;
    submit(&db, &review(&a, 5, None)).await;
    let all = ReviewFilter::default();
    assert_eq!(
        db.list_reviews(&a, &all, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert_eq!(
        db.list_reviews(&b, &all, None, 100)
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // The queue state is always that of a fresh job.
    let mut forged = review(&a, 6, None);
    forged.status = ReviewStatus::Running;
    forged.attempts = 7;
    forged.lease_owner = Some("me".into());
    forged.lease_expires = Some(i64::MAX);
    forged.cancel_requested = true;
    let stored = submit(&db, &forged).await;
    assert_eq!(stored.status, ReviewStatus::Pending);
    assert_eq!(
        (stored.attempts, stored.lease_owner, stored.lease_expires),
        (0, None, None)
    );
    assert!(!stored.cancel_requested);

    // Resubmitting the same record is idempotent (same key); reusing its id
    // with another key is a conflict.
    assert_eq!(
        db.submit_review(&first).await.unwrap(),
        (first.clone(), false)
    );
    let mut same_id = review(&a, 7, Some("other"));
    same_id.id = first.id.clone();
    assert!(matches!(
        db.submit_review(&same_id).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        db.submit_review(&review(&TenantId::generate(), 1, None))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn list_newest_first_with_cursor_and_status() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let mut made = Vec::new();
    for i in 0..7 {
        // Pairs of equal timestamps exercise the id tie-break.
        made.push(submit(&db, &review(&a, 100 + i / 2, None)).await);
    }
    submit(&db, &review(&b, 200, None)).await;
    made.sort_by(|x, y| (y.created_at, &y.id).cmp(&(x.created_at, &x.id)));

    let all = ReviewFilter::default();
    let p1 = db.list_reviews(&a, &all, None, 4).await.unwrap();
    assert_eq!(p1.items, made[..4]);
    assert_eq!(p1.next.as_deref(), Some(made[3].id.as_str()));
    let p2 = db
        .list_reviews(&a, &all, p1.next.as_deref(), 4)
        .await
        .unwrap();
    assert_eq!((p2.items.as_slice(), p2.next), (&made[4..], None));

    // Another tenant's id as a cursor reveals nothing.
    let b_page = db.list_reviews(&b, &all, None, 10).await.unwrap();
    let p = db
        .list_reviews(&a, &all, Some(b_page.items[0].id.as_str()), 10)
        .await
        .unwrap();
    assert!(p.items.is_empty());

    // The oldest job gets claimed; the status filter finds it alone.
    let claimed = claim(&db, "n1", 1000, 10).await.unwrap();
    assert_eq!(claimed.id, made[6].id);
    let running = ReviewFilter {
        status: Some(ReviewStatus::Running),
    };
    let p = db.list_reviews(&a, &running, None, 10).await.unwrap();
    assert_eq!(p.items, vec![claimed]);
    let pending = ReviewFilter {
        status: Some(ReviewStatus::Pending),
    };
    assert_eq!(
        db.list_reviews(&a, &pending, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        6
    );
    assert_eq!(db.review_counts(&a).await.unwrap(), (6, 1));
    assert_eq!(db.review_counts(&b).await.unwrap(), (1, 0));

    // Limits are clamped to 1..=1000.
    assert_eq!(
        db.list_reviews(&a, &all, None, 0)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn not_before_is_respected() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let mut later = review(&a, 1, None);
    later.not_before = 5000;
    let later = submit(&db, &later).await;
    assert_eq!(claim(&db, "n1", 4999, 10).await, None);
    let got = claim(&db, "n1", 5000, 10).await.unwrap();
    assert_eq!(got.id, later.id);
    assert_eq!(got.status, ReviewStatus::Running);
    assert_eq!((got.attempts, got.started_at), (1, Some(5000)));
    assert_eq!(got.lease_owner.as_deref(), Some("n1"));
    assert_eq!(got.lease_expires, Some(6000));
}

#[tokio::test]
async fn expired_lease_moves_the_job_to_another_owner() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let job = submit(&db, &review(&a, 1, None)).await;
    let first = claim(&db, "n1", 1000, 1).await.unwrap();
    assert_eq!(first.lease_expires, Some(2000));
    // Live until its expiry (inclusive): not claimable, and it counts
    // against the tenant's limit.
    submit(&db, &review(&a, 2, None)).await;
    assert_eq!(claim(&db, "n2", 2000, 1).await, None);

    let second = claim(&db, "n2", 2001, 1).await.unwrap();
    assert_eq!(second.id, job.id, "the abandoned job is older");
    assert_eq!(second.attempts, 2);
    assert_eq!(second.lease_owner.as_deref(), Some("n2"));
    assert_eq!(
        second.started_at,
        Some(1000),
        "started_at is the first claim's"
    );

    // The old owner has lost it.
    assert!(!db.renew_lease(&job.id, "n1", 9000).await.unwrap());
    assert!(!db
        .finish_review(&job.id, "n1", &end(ReviewStatus::Failed))
        .await
        .unwrap());
    assert!(!db.requeue_review(&job.id, "n1", 0, "x").await.unwrap());
    let now = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(
        (now.status, now.lease_owner.as_deref()),
        (ReviewStatus::Running, Some("n2"))
    );

    assert!(db.renew_lease(&job.id, "n2", 9000).await.unwrap());
    assert_eq!(
        db.get_review(&a, &job.id)
            .await
            .unwrap()
            .unwrap()
            .lease_expires,
        Some(9000)
    );
    assert!(db
        .finish_review(&job.id, "n2", &end(ReviewStatus::Succeeded))
        .await
        .unwrap());
    let done = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(done.status, ReviewStatus::Succeeded);
    assert_eq!((done.lease_owner, done.lease_expires), (None, None));
    assert!(done.finished_at.is_some());
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.usage, end(ReviewStatus::Succeeded).usage);
    // Finished is final, for its owner too.
    assert!(!db
        .finish_review(&job.id, "n2", &end(ReviewStatus::Failed))
        .await
        .unwrap());
    assert!(!db.renew_lease(&job.id, "n2", 9999).await.unwrap());
}

#[tokio::test]
async fn exhausted_attempts_fail_instead_of_being_claimed() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let mut r = review(&a, 1, None);
    r.max_attempts = 2;
    let job = submit(&db, &r).await;
    assert_eq!(claim(&db, "n1", 1000, 5).await.unwrap().attempts, 1);
    assert_eq!(claim(&db, "n2", 3000, 5).await.unwrap().attempts, 2);
    let other = submit(&db, &review(&a, 2, None)).await;

    // The second lease expires too: the job is given up, and the claim
    // takes the next job instead.
    let got = claim(&db, "n3", 5000, 5).await.unwrap();
    assert_eq!(got.id, other.id);
    let failed = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(failed.status, ReviewStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("gave up after 2 attempts (the node running it stopped)")
    );
    assert_eq!(failed.finished_at, Some(5000));
    assert_eq!(
        (failed.lease_owner, failed.lease_expires, failed.attempts),
        (None, None, 2)
    );
    // `other` was abandoned too, but has attempts left.
    let again = claim(&db, "n4", 9000, 5).await.unwrap();
    assert_eq!((again.id, again.attempts), (other.id, 2));
}

#[tokio::test]
async fn requeue_and_finish_rules() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let job = submit(&db, &review(&a, 1, None)).await;
    claim(&db, "n1", 1000, 1).await.unwrap();
    assert!(matches!(
        db.finish_review(&job.id, "n1", &end(ReviewStatus::Running))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(db
        .requeue_review(&job.id, "n1", 4000, "sandbox failed to start")
        .await
        .unwrap());
    let back = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(back.status, ReviewStatus::Pending);
    assert_eq!(back.not_before, 4000);
    assert_eq!(back.error.as_deref(), Some("sandbox failed to start"));
    assert_eq!((back.lease_owner, back.lease_expires), (None, None));
    assert!(
        !db.renew_lease(&job.id, "n1", 9000).await.unwrap(),
        "no longer running"
    );

    assert_eq!(claim(&db, "n2", 3999, 1).await, None);
    let again = claim(&db, "n2", 4000, 1).await.unwrap();
    assert_eq!((again.attempts, again.started_at), (2, Some(1000)));
    let mut timeout = end(ReviewStatus::TimedOut);
    timeout.exit_code = None;
    timeout.signal = Some(9);
    timeout.error = Some("ran past its timeout".into());
    assert!(db.finish_review(&job.id, "n2", &timeout).await.unwrap());
    let done = db.get_review(&a, &job.id).await.unwrap().unwrap();
    assert_eq!(done.status, ReviewStatus::TimedOut);
    assert_eq!((done.exit_code, done.signal), (None, Some(9)));
    assert_eq!(done.error.as_deref(), Some("ran past its timeout"));
}

#[tokio::test]
async fn cancel_pending_running_and_terminal() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let running = submit(&db, &review(&a, 1, None)).await;
    let pending = submit(&db, &review(&a, 2, None)).await;
    claim(&db, "n1", 1000, 1).await.unwrap();

    let c = db.cancel_review(&a, &pending.id).await.unwrap().unwrap();
    assert_eq!(c.status, ReviewStatus::Cancelled);
    assert_eq!(c.error.as_deref(), Some("cancelled before it started"));
    assert!(c.finished_at.is_some());
    assert!(!c.cancel_requested);
    assert_eq!(
        claim(&db, "n2", 1000, 5).await,
        None,
        "cancelled is not claimable"
    );

    assert!(!db.cancel_requested(&running.id).await.unwrap());
    // Another tenant cannot cancel it, or learn it exists.
    assert_eq!(db.cancel_review(&b, &running.id).await.unwrap(), None);
    assert!(!db.cancel_requested(&running.id).await.unwrap());
    let c = db.cancel_review(&a, &running.id).await.unwrap().unwrap();
    assert_eq!(c.status, ReviewStatus::Running);
    assert!(c.cancel_requested);
    assert_eq!(c.finished_at, None);
    assert_eq!(c.lease_owner.as_deref(), Some("n1"));
    assert!(db.cancel_requested(&running.id).await.unwrap());

    // The worker acts on it.
    let mut stopped = end(ReviewStatus::Cancelled);
    stopped.error = Some("cancelled".into());
    assert!(db.finish_review(&running.id, "n1", &stopped).await.unwrap());
    let done = db.get_review(&a, &running.id).await.unwrap().unwrap();

    // Terminal jobs are returned unchanged.
    assert_eq!(db.cancel_review(&a, &running.id).await.unwrap(), Some(done));
    let cancelled = db.get_review(&a, &pending.id).await.unwrap();
    assert_eq!(db.cancel_review(&a, &pending.id).await.unwrap(), cancelled);
    assert_eq!(
        db.cancel_review(&a, &ReviewId::generate()).await.unwrap(),
        None
    );
    assert!(!db.cancel_requested(&ReviewId::generate()).await.unwrap());
}

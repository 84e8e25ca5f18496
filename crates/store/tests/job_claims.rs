//! Claiming review jobs on a real database file: fair between tenants,
//! a newly active tenant served next, and concurrent claims that never
//! share a job.

use std::collections::HashSet;
use std::sync::Arc;
use warden_store::jobs::*;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_fair_between_tenants() {
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    for i in 0..5 {
        submit(&db, &review(&a, 10 + i, None)).await;
    }
    submit(&db, &review(&b, 100, None)).await;

    // One job per tenant at a time: two concurrent claims get one of each,
    // although all of A's jobs are older than B's.
    let (x, y) = tokio::join!(claim(&db, "n1", 1000, 1), claim(&db, "n2", 1000, 1));
    let mut tenants = vec![x.unwrap().tenant_id, y.unwrap().tenant_id];
    tenants.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(tenants, want);
    // Both tenants are at their limit.
    assert_eq!(claim(&db, "n3", 1000, 1).await, None);

    // With room for two each, B's single job still goes before A's second.
    let (_dir, db) = open_db().await;
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let mut a_jobs = Vec::new();
    for i in 0..5 {
        a_jobs.push(submit(&db, &review(&a, 10 + i, None)).await);
    }
    let late_b = submit(&db, &review(&b, 100, None)).await;
    let first = claim(&db, "n1", 1000, 2).await.unwrap();
    assert_eq!(first.id, a_jobs[0].id, "oldest first when counts tie");
    let second = claim(&db, "n1", 1000, 2).await.unwrap();
    assert_eq!(
        second.id, late_b.id,
        "the tenant with fewer live jobs first"
    );
    let third = claim(&db, "n1", 1000, 2).await.unwrap();
    assert_eq!(third.id, a_jobs[1].id);
    // A has two live, its limit; B has none left.
    assert_eq!(claim(&db, "n1", 1000, 2).await, None);
    // A finished job frees a slot.
    assert!(db
        .finish_review(&first.id, "n1", &end(ReviewStatus::Succeeded))
        .await
        .unwrap());
    assert_eq!(claim(&db, "n1", 1000, 2).await.unwrap().id, a_jobs[2].id);
    assert_eq!(
        claim(&db, "n1", 1000, 0).await,
        None,
        "per_tenant 0 claims nothing"
    );
}

/// Four busy tenants each hold a backlog and fill the four worker slots;
/// a fifth submits one job later. The next slot that frees goes to the
/// fifth tenant, not back to the tenant that just finished (which has as
/// few live jobs, and the oldest backlog).

#[tokio::test]
async fn a_newly_active_tenant_gets_the_next_free_slot() {
    let (_dir, db) = open_db().await;
    let mut busy = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let t = tenant(&db, name).await;
        for i in 0..10 {
            submit(&db, &review(&t, 10 + i, None)).await;
        }
        busy.push(t);
    }
    // Four slots, one job each (fewest live first).
    let mut running = Vec::new();
    for _ in 0..4 {
        running.push(claim(&db, "n1", 1000, 4).await.unwrap());
    }
    let mut served: Vec<_> = running.iter().map(|r| r.tenant_id.clone()).collect();
    served.sort();
    let mut want = busy.clone();
    want.sort();
    assert_eq!(served, want, "one job per busy tenant");

    // Control: with no newcomer, a freed slot goes to the busy tenant
    // served least recently (here: the one that just finished).
    let done = running.remove(0);
    assert!(db
        .finish_review(&done.id, "n1", &end(ReviewStatus::Succeeded))
        .await
        .unwrap());
    let next = claim(&db, "n1", 2000, 4).await.unwrap();
    assert_eq!(next.tenant_id, done.tenant_id);
    running.push(next);

    // The newcomer submits one job; every busy tenant keeps its backlog.
    let newcomer = tenant(&db, "e").await;
    let single = submit(&db, &review(&newcomer, 3000, None)).await;
    let waiting = running.remove(0);
    assert!(db
        .finish_review(&waiting.id, "n1", &end(ReviewStatus::Succeeded))
        .await
        .unwrap());
    let next = claim(&db, "n1", 3000, 4).await.unwrap();
    assert_eq!(
        next.id, single.id,
        "the newcomer's job takes the first free slot (got {}'s)",
        next.tenant_id
    );

    // The next freed slot goes to the busy tenant whose slot the newcomer
    // took (it has as few running jobs as the one just finished, and was
    // served less recently), not back to the one that just finished.
    let done = running.remove(0);
    assert!(db
        .finish_review(&done.id, "n1", &end(ReviewStatus::Succeeded))
        .await
        .unwrap());
    let next = claim(&db, "n1", 4000, 4).await.unwrap();
    assert_eq!(next.tenant_id, waiting.tenant_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_claims_never_share_a_job() {
    let (_dir, db) = open_db().await;
    let db = Arc::new(db);
    let mut jobs = HashSet::new();
    for t in 0..2 {
        let t = tenant(&db, &format!("t{t}")).await;
        for i in 0..5 {
            jobs.insert(submit(&db, &review(&t, i, None)).await.id);
        }
    }
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let db = Arc::clone(&db);
            tokio::spawn(async move { db.claim_review(&format!("n{n}"), 1000, 60_000, 100).await })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        if let Some(r) = t.await.unwrap().unwrap() {
            assert_eq!(r.attempts, 1);
            claimed.push(r.id);
        }
    }
    assert_eq!(
        claimed.len(),
        10,
        "every job claimed once, the rest got none"
    );
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), jobs);
}

//! Audit chains on a real database file: concurrent appends and tampering.

use std::sync::Arc;
use warden_store::anchor;
use warden_store::audit::{self, GENESIS};
use warden_store::sqlite::{self, SqliteMeta};
use warden_store::*;

async fn open_db() -> (tempfile::TempDir, SqliteMeta) {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite::open(&dir.path().join("meta.db")).await.unwrap();
    (dir, db)
}

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        actor: format!("key_{i}"),
        action: "sandbox.create".into(),
        target: format!("sbx_{i}"),
        outcome: "ok".into(),
    }
}

async fn append_concurrently(db: &Arc<SqliteMeta>, tenant: &TenantId, n: usize) -> Vec<AuditEntry> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let db = Arc::clone(db);
            let tenant = tenant.clone();
            tokio::spawn(async move { db.append_audit(&tenant, &event(i)).await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_appends_form_one_verifying_chain() {
    let (_dir, db) = open_db().await;
    let db = Arc::new(db);
    let a = TenantId::generate();
    let b = TenantId::generate();
    // Two tenants' chains interleaved, 50 appends each, all at once.
    let (ra, rb) = tokio::join!(
        append_concurrently(&db, &a, 50),
        append_concurrently(&db, &b, 50)
    );
    assert_eq!(ra.len(), 50);
    assert_eq!(rb.len(), 50);

    for t in [&a, &b] {
        let chain = db.list_audit(t, 0, 1000).await.unwrap();
        let seqs: Vec<i64> = chain.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
        assert_eq!(chain[0].prev_hash, GENESIS);
        assert!(chain.iter().all(|e| e.tenant_id == *t));
        audit::verify(&chain).unwrap();
    }
    // What append returned is what was stored.
    let stored = db.list_audit(&a, 0, 1000).await.unwrap();
    for e in &ra {
        assert_eq!(stored[(e.seq - 1) as usize], *e);
    }

    // Paging by seq.
    let page = db.list_audit(&a, 10, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    assert_eq!(db.list_audit(&a, 50, 10).await.unwrap(), vec![]);
    // Verifying page by page gives the same answer as the whole chain.
    let mut v = audit::Verifier::new();
    let mut after = 0;
    loop {
        let page = db.list_audit(&a, after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        page.iter().try_for_each(|e| v.push(e)).unwrap();
    }
    assert_eq!(v.verified(), 50);

    let mut tenants = db.audit_tenants().await.unwrap();
    tenants.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(tenants, expected);
}

#[tokio::test]
async fn tampering_is_detected_at_the_altered_seq() {
    let (_dir, db) = open_db().await;
    let t = TenantId::generate();
    for i in 0..20 {
        db.append_audit(&t, &event(i)).await.unwrap();
    }
    audit::verify(&db.list_audit(&t, 0, 1000).await.unwrap()).unwrap();

    // Rewriting an outcome.
    sqlx::query("UPDATE audit SET outcome = 'denied' WHERE tenant_id = ? AND seq = 7")
        .bind(t.as_str())
        .execute(db.pool())
        .await
        .unwrap();
    let err = audit::verify(&db.list_audit(&t, 0, 1000).await.unwrap()).unwrap_err();
    assert_eq!(err.seq, 7, "{err}");

    // Rewriting it and recomputing its hash breaks the link to the next.
    let chain = db.list_audit(&t, 0, 1000).await.unwrap();
    let e = &chain[6];
    let rehashed = audit::entry_hash(
        &e.prev_hash,
        &t,
        7,
        &e.actor,
        &e.action,
        &e.target,
        &e.outcome,
        e.at,
    );
    sqlx::query("UPDATE audit SET hash = ? WHERE tenant_id = ? AND seq = 7")
        .bind(&rehashed)
        .bind(t.as_str())
        .execute(db.pool())
        .await
        .unwrap();
    let err = audit::verify(&db.list_audit(&t, 0, 1000).await.unwrap()).unwrap_err();
    assert_eq!(err.seq, 8, "{err}");

    // Removing an entry leaves a gap.
    let (_dir2, db2) = open_db().await;
    for i in 0..5 {
        db2.append_audit(&t, &event(i)).await.unwrap();
    }
    sqlx::query("DELETE FROM audit WHERE seq = 3")
        .execute(db2.pool())
        .await
        .unwrap();
    let err = audit::verify(&db2.list_audit(&t, 0, 1000).await.unwrap()).unwrap_err();
    assert_eq!(err.seq, 3, "{err}");
    assert!(err.to_string().contains("seq 3"), "{err}");
}

#[tokio::test]
async fn appends_continue_the_chain_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let t = TenantId::generate();
    let db = sqlite::open(&path).await.unwrap();
    db.append_audit(&t, &event(0)).await.unwrap();
    db.close().await;
    let db = sqlite::open(&path).await.unwrap();
    let second = db.append_audit(&t, &event(1)).await.unwrap();
    assert_eq!(second.seq, 2);
    audit::verify(&db.list_audit(&t, 0, 1000).await.unwrap()).unwrap();
}

#[tokio::test]
async fn entries_about_a_target_are_its_own_and_its_details_only() {
    let (_dir, db) = open_db().await;
    let (t, other) = (TenantId::generate(), TenantId::generate());
    let ev = |target: &str| AuditEvent {
        actor: "k".into(),
        action: "sandbox.exec".into(),
        target: target.into(),
        outcome: "ok".into(),
    };
    for target in [
        "sbx_a",
        "sbx_a:ls",
        "sbx_ab",
        "sbx_a:cat",
        "sbx_b:ls",
        "sbx_a;x",
    ] {
        db.append_audit(&t, &ev(target)).await.unwrap();
    }
    db.append_audit(&other, &ev("sbx_a")).await.unwrap();
    let q = |descending, after_seq, before_seq| AuditQuery {
        target: "sbx_a".into(),
        from_ms: None,
        until_ms: None,
        after_seq,
        before_seq,
        descending,
        limit: 2,
    };
    let targets = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.target).collect::<Vec<_>>();
    let first = db
        .list_audit_about(&t, &q(false, None, None))
        .await
        .unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    let rest = db
        .list_audit_about(&t, &q(false, Some(2), None))
        .await
        .unwrap();
    assert_eq!(targets(rest), ["sbx_a:cat"]);
    let newest = db.list_audit_about(&t, &q(true, None, None)).await.unwrap();
    assert_eq!(targets(newest), ["sbx_a:cat", "sbx_a:ls"]);
    let older = db
        .list_audit_about(&t, &q(true, None, Some(2)))
        .await
        .unwrap();
    assert_eq!(targets(older), ["sbx_a"]);
    let later = AuditQuery {
        from_ms: Some(now_ms() + 60_000),
        ..q(false, None, None)
    };
    assert!(db.list_audit_about(&t, &later).await.unwrap().is_empty());
    let earlier = AuditQuery {
        until_ms: Some(0),
        ..q(true, None, None)
    };
    assert!(db.list_audit_about(&t, &earlier).await.unwrap().is_empty());
}

/// Reads a whole chain and verifies it with the key and its anchor.
async fn verify_keyed(
    db: &SqliteMeta,
    anchors: &anchor::Anchors,
    tenant: &TenantId,
) -> Result<(), audit::AuditBreak> {
    let a = anchors.read(tenant).await.unwrap();
    let mut v = audit::Verifier::keyed(anchors.key(), a);
    for e in db.list_audit(tenant, 0, 1000).await.unwrap() {
        v.push(&e)?;
    }
    v.finish()
}

/// Chains written before keys (unkeyed sha256) are adopted at the first
/// keyed start: anchored as they are, then continued with keyed entries.
/// The whole chain verifies; a rewrite of an old unkeyed entry with every
/// hash recomputed is caught by the anchor, and once a chain is keyed an
/// unkeyed entry after a keyed one is a break.
#[tokio::test]
async fn unkeyed_chains_are_adopted_and_stay_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let plain = sqlite::open(&dir.path().join("meta.db")).await.unwrap();
    let t = TenantId::generate();
    for i in 0..3 {
        plain.append_audit(&t, &event(i)).await.unwrap();
    }
    let objects = Objects::local(&dir.path().join("objects")).unwrap();
    let anchors = anchor::Anchors::new(&objects, audit::AuditKey::generate());
    let keyed = plain.clone().with_audit(anchors.clone());
    assert_eq!(anchors.adopt_unkeyed(&keyed).await.unwrap(), 1);
    assert_eq!(anchors.read(&t).await.unwrap().unwrap().seq, 3);
    // Once only: a later start anchors nothing on its own.
    assert_eq!(anchors.adopt_unkeyed(&keyed).await.unwrap(), 0);
    for i in 3..5 {
        keyed.append_audit(&t, &event(i)).await.unwrap();
    }
    assert_eq!(anchors.read(&t).await.unwrap().unwrap().seq, 5);
    assert_eq!(verify_keyed(&keyed, &anchors, &t).await, Ok(()));

    // Rewriting seq 2 and recomputing the unkeyed hashes of 2 and 3 makes
    // them verify on their own, but not against the anchor's chain.
    let rows = keyed.list_audit(&t, 0, 10).await.unwrap();
    let mut prev = rows[0].hash.clone();
    for e in &rows[1..3] {
        let outcome = if e.seq == 2 {
            "denied"
        } else {
            e.outcome.as_str()
        };
        let hash = audit::entry_hash(
            &prev, &t, e.seq, &e.actor, &e.action, &e.target, outcome, e.at,
        );
        sqlx::query(
            "UPDATE audit SET outcome = ?, prev_hash = ?, hash = ? WHERE tenant_id = ? AND seq = ?",
        )
        .bind(outcome)
        .bind(&prev)
        .bind(&hash)
        .bind(t.as_str())
        .bind(e.seq)
        .execute(keyed.pool())
        .await
        .unwrap();
        prev = hash;
    }
    let err = verify_keyed(&keyed, &anchors, &t).await.unwrap_err();
    // Seq 4 (keyed) names the old hash of 3; either break is the rewrite.
    assert!(err.seq == 3 || err.seq == 4, "{err}");

    // An unkeyed entry after keyed ones: a rewrite that dropped the key.
    let t2 = TenantId::generate();
    keyed.append_audit(&t2, &event(0)).await.unwrap();
    let head = keyed.list_audit(&t2, 0, 10).await.unwrap().remove(0);
    let e = event(1);
    let hash = audit::entry_hash(
        &head.hash, &t2, 2, &e.actor, &e.action, &e.target, &e.outcome, 7,
    );
    sqlx::query("INSERT INTO audit (tenant_id, seq, actor, action, target, outcome, at, prev_hash, hash) VALUES (?, 2, ?, ?, ?, ?, 7, ?, ?)")
        .bind(t2.as_str())
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.outcome)
        .bind(&head.hash)
        .bind(&hash)
        .execute(keyed.pool())
        .await
        .unwrap();
    let err = verify_keyed(&keyed, &anchors, &t2).await.unwrap_err();
    assert_eq!(err.seq, 2);
    assert!(err.reason.contains("unkeyed entry after keyed"), "{err}");
}

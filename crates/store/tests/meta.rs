//! SqliteMeta on a real database file: tenants, keys, files, nonces, and
//! tenant isolation.

use std::sync::Arc;
use warden_store::sqlite::{self, SqliteMeta};
use warden_store::*;

async fn open_db() -> (tempfile::TempDir, SqliteMeta) {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite::open(&dir.path().join("meta.db")).await.unwrap();
    (dir, db)
}

fn file(tenant: &TenantId, name: &str, size: u64, created_at: Millis) -> FileMeta {
    FileMeta {
        id: FileId::generate(),
        tenant_id: tenant.clone(),
        name: name.into(),
        size,
        sha256: "ab".repeat(32),
        content_type: "text/plain".into(),
        created_at,
        scan: None,
    }
}

#[tokio::test]
async fn settings_round_trip() {
    let (_dir, db) = open_db().await;
    assert_eq!(db.get_setting("admin_hash").await.unwrap(), None);
    db.set_setting("admin_hash", "one").await.unwrap();
    db.set_setting("admin_hash", "two").await.unwrap();
    assert_eq!(
        db.get_setting("admin_hash").await.unwrap().as_deref(),
        Some("two")
    );
}

#[tokio::test]
async fn tenant_crud_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("meta.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = sqlite::open(&path).await.unwrap();

    let quotas = Quotas {
        max_sandboxes: 3,
        ..Quotas::default()
    };
    let a = db.create_tenant("acme", quotas).await.unwrap();
    assert!(a.id.as_str().starts_with(TenantId::PREFIX));
    assert!(!a.disabled);
    assert_eq!(db.get_tenant(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(db.get_tenant(&TenantId::generate()).await.unwrap(), None);

    assert!(db.set_tenant_disabled(&a.id, true).await.unwrap());
    let bigger = Quotas {
        max_file_bytes: 7,
        ..quotas
    };
    assert!(db.set_tenant_quotas(&a.id, bigger).await.unwrap());
    let got = db.get_tenant(&a.id).await.unwrap().unwrap();
    assert!(got.disabled);
    assert_eq!(got.quotas, bigger);
    let ghost = TenantId::generate();
    assert!(!db.set_tenant_disabled(&ghost, true).await.unwrap());
    assert!(!db.set_tenant_quotas(&ghost, bigger).await.unwrap());

    // Listing pages through every tenant in creation order.
    let mut made = vec![a.id.clone()];
    for i in 0..4 {
        made.push(db.create_tenant(&format!("t{i}"), quotas).await.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = db.list_tenants(after.as_deref(), 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|t| t.id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected = made.clone();
    let all = db.list_tenants(None, 1000).await.unwrap();
    assert_eq!(all.next, None);
    expected.sort_by_key(|id| {
        let t = all.items.iter().find(|t| t.id == *id).unwrap();
        (t.created_at, t.id.clone())
    });
    assert_eq!(seen, expected);

    // Reopening runs the migrations again (a no-op) and finds the data.
    db.close().await;
    let db = sqlite::open(&path).await.unwrap();
    assert_eq!(db.list_tenants(None, 100).await.unwrap().items.len(), 5);
    assert!(db.get_tenant(&a.id).await.unwrap().unwrap().disabled);
}

#[tokio::test]
async fn delete_tenant_cascades_but_keeps_audit() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap();
    let b = db.create_tenant("b", Quotas::default()).await.unwrap();
    let key = db.create_key(&a.id, "ci", "hash-a").await.unwrap();
    let b_key = db.create_key(&b.id, "ci", "hash-b").await.unwrap();
    let f = file(&a.id, "x.txt", 10, 1);
    db.insert_file(&f).await.unwrap();
    db.insert_file(&file(&b.id, "y.txt", 20, 1)).await.unwrap();
    let event = AuditEvent {
        actor: "admin".into(),
        action: "tenant.create".into(),
        target: a.id.to_string(),
        outcome: "ok".into(),
    };
    db.append_audit(&a.id, &event).await.unwrap();

    assert!(db.delete_tenant(&a.id).await.unwrap());
    assert!(!db.delete_tenant(&a.id).await.unwrap(), "already gone");
    assert_eq!(db.get_tenant(&a.id).await.unwrap(), None);
    assert_eq!(db.find_key(&key.id).await.unwrap(), None);
    assert_eq!(db.list_keys(&a.id).await.unwrap(), vec![]);
    assert_eq!(db.get_file(&a.id, &f.id).await.unwrap(), None);
    assert_eq!(db.storage_bytes(&a.id).await.unwrap(), 0);
    // The audit chain outlives the tenant.
    assert_eq!(db.list_audit(&a.id, 0, 100).await.unwrap().len(), 1);
    assert_eq!(db.audit_tenants().await.unwrap(), vec![a.id.clone()]);
    // The other tenant is untouched.
    assert!(db.find_key(&b_key.id).await.unwrap().is_some());
    assert_eq!(db.storage_bytes(&b.id).await.unwrap(), 20);
}

#[tokio::test]
async fn keys_create_list_revoke_find() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap();
    let k1 = db.create_key(&a.id, "one", "h1").await.unwrap();
    let k2 = db.create_key(&a.id, "two", "h2").await.unwrap();
    assert!(k1.id.as_str().starts_with(KeyId::PREFIX));
    assert_eq!(k1.tenant_id, a.id);
    assert_eq!(k1.revoked_at, None);
    let listed = db.list_keys(&a.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&k1) && listed.contains(&k2));

    assert_eq!(
        db.find_key(&k1.id).await.unwrap(),
        Some((k1.clone(), "h1".into()))
    );
    assert_eq!(db.find_key(&KeyId::generate()).await.unwrap(), None);

    assert!(db.revoke_key(&a.id, &k1.id).await.unwrap());
    let (revoked, hash) = db.find_key(&k1.id).await.unwrap().unwrap();
    assert_eq!(
        hash, "h1",
        "revoked keys are still found; the caller checks"
    );
    let at = revoked.revoked_at.expect("revoked");
    // Revoking again is fine and keeps the first time.
    assert!(db.revoke_key(&a.id, &k1.id).await.unwrap());
    assert_eq!(
        db.find_key(&k1.id).await.unwrap().unwrap().0.revoked_at,
        Some(at)
    );
    assert!(!db.revoke_key(&a.id, &KeyId::generate()).await.unwrap());
    assert_eq!(
        db.find_key(&k2.id).await.unwrap().unwrap().0.revoked_at,
        None
    );

    // A key for a tenant that does not exist is refused.
    assert!(db
        .create_key(&TenantId::generate(), "x", "h")
        .await
        .is_err());
}

#[tokio::test]
async fn files_paginate_and_sum() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap();
    let mut files = Vec::new();
    for i in 0..25u64 {
        // Groups of equal timestamps exercise the id tie-break.
        let f = file(&a.id, &format!("f{i}"), i + 1, 1000 + (i / 3) as i64);
        db.insert_file(&f).await.unwrap();
        files.push(f);
    }
    files.sort_by(|x, y| (x.created_at, &x.id).cmp(&(y.created_at, &y.id)));

    let p1 = db.list_files(&a.id, None, 10).await.unwrap();
    assert_eq!(p1.items, files[..10]);
    assert_eq!(p1.next.as_deref(), Some(files[9].id.as_str()));
    let p2 = db.list_files(&a.id, p1.next.as_deref(), 10).await.unwrap();
    assert_eq!(p2.items, files[10..20]);
    let p3 = db.list_files(&a.id, p2.next.as_deref(), 10).await.unwrap();
    assert_eq!(p3.items, files[20..]);
    assert_eq!(p3.next, None);

    // Limits are clamped to 1..=1000.
    let one = db.list_files(&a.id, None, 0).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next.is_some());
    let all = db.list_files(&a.id, None, u32::MAX).await.unwrap();
    assert_eq!((all.items.len(), all.next), (25, None));
    // A page that ends exactly at the last row has no next.
    let exact = db.list_files(&a.id, p2.next.as_deref(), 5).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (5, None));

    assert_eq!(
        db.storage_bytes(&a.id).await.unwrap(),
        (1..=25).sum::<u64>()
    );
    assert_eq!(
        db.get_file(&a.id, &files[3].id).await.unwrap(),
        Some(files[3].clone())
    );
    assert!(db.delete_file(&a.id, &files[3].id).await.unwrap());
    assert!(!db.delete_file(&a.id, &files[3].id).await.unwrap());
    assert_eq!(db.get_file(&a.id, &files[3].id).await.unwrap(), None);
    assert_eq!(
        db.storage_bytes(&a.id).await.unwrap(),
        (1..=25).sum::<u64>() - files[3].size
    );

    // The same id twice is a conflict.
    match db.insert_file(&files[0]).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains(files[0].id.as_str())),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn tenants_cannot_reach_each_others_files() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap();
    let b = db.create_tenant("b", Quotas::default()).await.unwrap();
    let fa = file(&a.id, "secret", 100, 1);
    db.insert_file(&fa).await.unwrap();
    let ka = db.create_key(&a.id, "k", "h").await.unwrap();

    assert_eq!(db.get_file(&b.id, &fa.id).await.unwrap(), None);
    assert!(!db.delete_file(&b.id, &fa.id).await.unwrap());
    let listed = db.list_files(&b.id, None, 100).await.unwrap();
    assert_eq!((listed.items.len(), listed.next), (0, None));
    // A's id as B's cursor reveals nothing either.
    assert!(db
        .list_files(&b.id, Some(fa.id.as_str()), 100)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(db.storage_bytes(&b.id).await.unwrap(), 0);
    assert!(!db.revoke_key(&b.id, &ka.id).await.unwrap());
    assert!(db.list_keys(&b.id).await.unwrap().is_empty());
    // Still all there for A.
    assert_eq!(db.get_file(&a.id, &fa.id).await.unwrap(), Some(fa.clone()));
    assert_eq!(
        db.find_key(&ka.id).await.unwrap().unwrap().0.revoked_at,
        None
    );

    // The TenantStore handle refuses rows of another tenant outright.
    let meta: Arc<dyn MetaStore> = Arc::new(db.clone());
    let objects_dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(objects_dir.path()).unwrap();
    let store_b = TenantStore::new(b.id.clone(), meta, &objects);
    assert!(store_b
        .insert_file(&file(&a.id, "sneaky", 1, 2))
        .await
        .is_err());
    assert_eq!(store_b.get_file(&fa.id).await.unwrap(), None);
    assert!(!store_b.delete_file(&fa.id).await.unwrap());
    assert_eq!(
        db.list_files(&a.id, None, 10).await.unwrap().items,
        vec![fa]
    );
}

#[tokio::test]
async fn upload_nonce_is_used_once() {
    let (_dir, db) = open_db().await;
    let later = now_ms() + 60_000;
    assert!(db.use_upload_nonce("n1", later).await.unwrap());
    assert!(!db.use_upload_nonce("n1", later).await.unwrap());
    assert!(db.use_upload_nonce("n2", later).await.unwrap());

    // Expired nonces are cleared out by later calls.
    assert!(db.use_upload_nonce("old", now_ms() - 1_000).await.unwrap());
    assert!(db.use_upload_nonce("n3", later).await.unwrap());
    let left: Vec<String> = sqlx::query_scalar("SELECT nonce FROM upload_nonces ORDER BY nonce")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(left, vec!["n1", "n2", "n3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_nonce_use_has_one_winner() {
    let (_dir, db) = open_db().await;
    let db = Arc::new(db);
    let later = now_ms() + 60_000;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let db = Arc::clone(&db);
            tokio::spawn(async move { db.use_upload_nonce("shared", later).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn command_policy_round_trip_and_goes_with_its_tenant() {
    let (_dir, db) = open_db().await;
    let a = db.create_tenant("a", Quotas::default()).await.unwrap();
    let b = db.create_tenant("b", Quotas::default()).await.unwrap();
    assert_eq!(db.get_command_policy(&a.id).await.unwrap(), None);
    let p = serde_json::json!({"deny": ["rm *"], "allow": [], "hook": false});
    db.set_command_policy(&a.id, Some(&p)).await.unwrap();
    let q = serde_json::json!({"deny": [], "allow": ["ls*"], "hook": true});
    db.set_command_policy(&a.id, Some(&q)).await.unwrap();
    assert_eq!(db.get_command_policy(&a.id).await.unwrap(), Some(q));
    assert_eq!(db.get_command_policy(&b.id).await.unwrap(), None);
    let ghost = TenantId::generate();
    let e = db.set_command_policy(&ghost, Some(&p)).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e}");
    db.set_command_policy(&b.id, Some(&p)).await.unwrap();
    db.set_command_policy(&b.id, None).await.unwrap();
    assert_eq!(db.get_command_policy(&b.id).await.unwrap(), None);
    assert!(db.delete_tenant(&a.id).await.unwrap());
    assert_eq!(db.get_command_policy(&a.id).await.unwrap(), None);
}

/// Storage reservations: parallel reservations never take a tenant past
/// its storage quota together (the check and the reservation are one
/// transaction), a refusal names the quota, a file's row takes over its
/// upload's reservation, and released or stale reservations free the
/// space.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_never_exceed_the_storage_quota() {
    let (_dir, db) = open_db().await;
    let quotas = Quotas {
        max_storage_bytes: 10 << 20,
        ..Quotas::default()
    };
    let t = db.create_tenant("t", quotas).await.unwrap().id;
    let db = Arc::new(db);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (db, t) = (Arc::clone(&db), t.clone());
            tokio::spawn(async move { db.reserve_storage(&t, &format!("up{i}"), 3 << 20).await })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => granted += 1,
            Err(e @ StoreError::StorageQuota { .. }) => {
                assert!(e.to_string().contains("max_storage_bytes"), "{e}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(granted, 3, "three 3 MiB reservations fit in 10 MiB");
    // A file's row replaces its reservation: the total stays the same.
    db.reserve_storage(&t, "file_x", 1 << 20).await.unwrap();
    let mut f = file(&t, "x", 1 << 20, 1);
    f.id = FileId::from_stored("file_x".into());
    db.insert_file(&f).await.unwrap();
    assert!(matches!(
        db.reserve_storage(&t, "up_more", 1).await,
        Err(StoreError::StorageQuota { used, .. }) if used == 10 << 20
    ));
    // Released and stale reservations free their space.
    for i in 0..8 {
        db.release_storage(&t, &format!("up{i}")).await.unwrap();
    }
    db.reserve_storage(&t, "big", 9 << 20).await.unwrap();
    assert_eq!(
        db.clear_storage_reservations(now_ms() + 1).await.unwrap(),
        1
    );
    db.reserve_storage(&t, "big2", 9 << 20).await.unwrap();
}

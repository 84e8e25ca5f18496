//! Secrets in SqliteMeta: create/replace/list/get/delete, tenant scoping,
//! and removal with the tenant.

use std::sync::Arc;
use warden_store::sqlite;
use warden_store::*;

fn record(tenant: &TenantId, name: &str, ct: &[u8], at: Millis) -> SecretRecord {
    SecretRecord {
        tenant_id: tenant.clone(),
        name: name.into(),
        nonce: vec![7; 24],
        ciphertext: ct.to_vec(),
        created_at: at,
        updated_at: at,
    }
}

#[tokio::test]
async fn secrets_are_per_tenant_and_replace_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(sqlite::open(&dir.path().join("meta.db")).await.unwrap());
    let meta: Arc<dyn MetaStore> = db.clone();
    let objects = Objects::local(&dir.path().join("objects")).unwrap();
    let a = meta.create_tenant("a", Quotas::default()).await.unwrap();
    let b = meta.create_tenant("b", Quotas::default()).await.unwrap();
    let sa = TenantStore::new(a.id.clone(), meta.clone(), &objects);
    let sb = TenantStore::new(b.id.clone(), meta.clone(), &objects);

    let m = sa
        .put_secret(&record(&a.id, "API_KEY", b"ct1", 10), false)
        .await
        .unwrap();
    assert_eq!(
        (m.name.as_str(), m.created_at, m.updated_at),
        ("API_KEY", 10, 10)
    );
    // Same name again: a conflict, unless replacing (which keeps created_at).
    let again = sa
        .put_secret(&record(&a.id, "API_KEY", b"ct2", 20), false)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let m = sa
        .put_secret(&record(&a.id, "API_KEY", b"ct2", 20), true)
        .await
        .unwrap();
    assert_eq!((m.created_at, m.updated_at), (10, 20));
    assert_eq!(
        sa.get_secret("API_KEY").await.unwrap().unwrap().ciphertext,
        b"ct2"
    );

    // Tenant B: the same name is its own; A's is invisible to it.
    assert!(sb.get_secret("API_KEY").await.unwrap().is_none());
    assert!(sb.list_secrets().await.unwrap().is_empty());
    assert!(!sb.delete_secret("API_KEY").await.unwrap());
    sb.put_secret(&record(&b.id, "API_KEY", b"b", 5), false)
        .await
        .unwrap();
    // A store handle refuses a record of another tenant.
    assert!(sa
        .put_secret(&record(&b.id, "X_Y", b"b", 5), false)
        .await
        .is_err());

    sa.put_secret(&record(&a.id, "A_OTHER", b"x", 30), false)
        .await
        .unwrap();
    let names: Vec<String> = sa
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["API_KEY", "A_OTHER"]);
    assert!(sa.delete_secret("A_OTHER").await.unwrap());
    assert!(!sa.delete_secret("A_OTHER").await.unwrap());

    // Deleting a tenant removes its secrets, not another's.
    assert!(meta.delete_tenant(&a.id).await.unwrap());
    assert!(meta.get_secret(&a.id, "API_KEY").await.unwrap().is_none());
    assert!(sb.get_secret("API_KEY").await.unwrap().is_some());
}

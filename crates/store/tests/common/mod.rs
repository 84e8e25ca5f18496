//! What the job tests share: a fresh database, tenants, jobs.
#![allow(dead_code)] // each test binary uses its own part

use warden_store::jobs::*;
use warden_store::sqlite::{self, SqliteMeta};
use warden_store::*;

pub async fn open_db() -> (tempfile::TempDir, SqliteMeta) {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite::open(&dir.path().join("meta.db")).await.unwrap();
    (dir, db)
}

pub async fn tenant(db: &SqliteMeta, name: &str) -> TenantId {
    db.create_tenant(name, Quotas::default()).await.unwrap().id
}

pub fn review(tenant: &TenantId, created_at: Millis, key: Option<&str>) -> ReviewRecord {
    ReviewRecord {
        id: ReviewId::generate(),
        tenant_id: tenant.clone(),
        status: ReviewStatus::Pending,
        spec: serde_json::json!({"image": "python:3.12", "command": ["pytest"]}),
        files: vec![FileId::generate()],
        idempotency_key: key.map(str::to_owned),
        webhook_url: Some("https://example.com/hook".into()),
        created_at,
        started_at: None,
        finished_at: None,
        attempts: 0,
        max_attempts: 3,
        exit_code: None,
        signal: None,
        error: None,
        usage: None,
        cancel_requested: false,
        lease_owner: None,
        lease_expires: None,
        not_before: created_at,
        storage: Default::default(),
        outputs_deleted_at: None,
    }
}

pub async fn submit(db: &SqliteMeta, r: &ReviewRecord) -> ReviewRecord {
    let (stored, created) = db.submit_review(r).await.unwrap();
    assert!(created);
    stored
}

pub fn end(status: ReviewStatus) -> ReviewEnd {
    ReviewEnd {
        status,
        exit_code: Some(0),
        signal: None,
        error: None,
        usage: Some(Usage {
            cpu_seconds: 1.5,
            peak_memory_bytes: 64 << 20,
            wall_seconds: 2.0,
        }),
        storage: Default::default(),
    }
}

/// Claims at `now` with a 1000 ms lease.
pub async fn claim(
    db: &SqliteMeta,
    owner: &str,
    now: Millis,
    per_tenant: u32,
) -> Option<ReviewRecord> {
    db.claim_review(owner, now, now + 1000, per_tenant)
        .await
        .unwrap()
}

//! The API's JSON shapes for snapshots: a sandbox's files, kept by its
//! tenant, that new sandboxes start from.

use crate::api::time;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_store::SnapshotRecord;

/// `POST /v1/sandboxes/{id}/snapshots`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// 1-63 of `[A-Za-z0-9._-]`, starting with a letter or digit; unique
    /// among the tenant's snapshots. Optional.
    pub name: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Snapshot {
    pub id: String,
    pub name: Option<String>,
    /// The sandbox it was taken from (which may have ended since).
    pub source_sandbox: String,
    /// `making` while its files are taken, then `ready`.
    pub state: String,
    /// What a sandbox made from it starts as.
    pub image: String,
    pub isolation: String,
    pub user: String,
    pub writable_root: bool,
    /// Regular files it holds, and their bytes (each content is stored
    /// once per tenant, however many snapshots hold it).
    pub files: u64,
    pub bytes: u64,
    pub created_at: String,
}

impl From<SnapshotRecord> for Snapshot {
    fn from(s: SnapshotRecord) -> Snapshot {
        let spec = crate::api::StoredSpec::of(&s.spec);
        Snapshot {
            id: s.id.to_string(),
            name: s.name,
            source_sandbox: s.source_sandbox.to_string(),
            state: if s.ready { "ready" } else { "making" }.into(),
            image: spec.image,
            isolation: spec.isolation.name().into(),
            user: spec.user.name().into(),
            writable_root: spec.writable_root,
            files: s.files,
            bytes: s.bytes,
            created_at: time(s.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SnapshotList {
    pub items: Vec<Snapshot>,
}

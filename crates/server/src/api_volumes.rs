//! The API's JSON shapes for volumes: a tenant's named persistent file
//! systems, and a sandbox's mounts of them.

use crate::api::time;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_store::VolumeRecord;

/// `POST /v1/volumes`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVolume {
    /// 1-63 of `[A-Za-z0-9._-]`, starting with a letter or digit; unique
    /// among the tenant's volumes.
    pub name: String,
    /// Its size, a hard limit (a full volume answers `ENOSPC` inside the
    /// sandbox). 16 MiB to `[limits] max_volume_bytes` (default 10 GiB);
    /// default 1 GiB. Counts in the tenant's `max_storage_bytes` from now
    /// until the volume is deleted.
    pub size_bytes: Option<u64>,
}

#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub size_bytes: u64,
    /// Bytes its files take (file system metadata included).
    pub used_bytes: Option<u64>,
    /// Whether a live sandbox has it mounted (a volume in use cannot be
    /// deleted).
    pub in_use: bool,
    pub created_at: String,
}

impl Volume {
    pub fn new(v: VolumeRecord, used_bytes: Option<u64>, in_use: bool) -> Volume {
        Volume {
            id: v.id.to_string(),
            name: v.name,
            size_bytes: v.size_bytes,
            used_bytes,
            in_use,
            created_at: time(v.created_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct VolumeList {
    pub items: Vec<Volume>,
}

/// A volume mounted in a sandbox (`CreateSandbox.volumes`).
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VolumeMount {
    /// The volume's id or name.
    pub volume: String,
    /// Where it appears: an absolute path that does not replace the
    /// standard layout (not `/`, `/input`, `/output`, `/scratch`, `/tmp`,
    /// `/proc`, `/dev`, `/etc`, `/usr` themselves, nor anything under
    /// `/proc`, `/dev`, `/etc` or `/.warden`).
    pub path: String,
    /// Mounted read-only (default: read-write).
    #[serde(default)]
    pub read_only: bool,
}

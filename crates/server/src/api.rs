//! The API's JSON shapes (what the OpenAPI document describes), and their
//! conversion from store records.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};
use utoipa::{IntoParams, ToSchema};
use warden_store as store;

pub use crate::api_network::{EgressEntry, EgressPage, EgressRuleBody, Network};

/// RFC 3339 in UTC with milliseconds.
pub fn time(ms: store::Millis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn parse_time(s: &str) -> Option<store::Millis> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64)
}

#[derive(Serialize, ToSchema, Clone, Copy)]
pub struct Quotas {
    pub max_sandboxes: u32,
    pub max_memory_bytes: u64,
    pub max_storage_bytes: u64,
    pub max_file_bytes: u64,
    /// Sum of the `cpus` of the tenant's running sandboxes and jobs.
    pub max_cpus: u32,
    /// Sum of the `pids` of the tenant's running sandboxes and jobs.
    pub max_pids: u64,
    /// Volumes the tenant keeps (their sizes count in `max_storage_bytes`).
    pub max_volumes: u32,
    /// Snapshots the tenant keeps (their blobs count in
    /// `max_storage_bytes`, each content once).
    pub max_snapshots: u32,
    pub max_images: u32,
}

impl From<store::Quotas> for Quotas {
    fn from(q: store::Quotas) -> Self {
        Quotas {
            max_sandboxes: q.max_sandboxes,
            max_memory_bytes: q.max_memory_bytes,
            max_storage_bytes: q.max_storage_bytes,
            max_file_bytes: q.max_file_bytes,
            max_cpus: q.max_cpus,
            max_pids: q.max_pids,
            max_volumes: q.max_volumes,
            max_snapshots: q.max_snapshots,
            max_images: q.max_images,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub disabled: bool,
    pub created_at: String,
    pub quotas: Quotas,
}

impl From<store::Tenant> for Tenant {
    fn from(t: store::Tenant) -> Self {
        Tenant {
            id: t.id.to_string(),
            name: t.name,
            disabled: t.disabled,
            created_at: time(t.created_at),
            quotas: t.quotas.into(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Missing fields take the server's configured defaults.
    pub quotas: Option<QuotaOverrides>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    pub max_sandboxes: Option<u32>,
    pub max_memory_bytes: Option<u64>,
    pub max_storage_bytes: Option<u64>,
    pub max_file_bytes: Option<u64>,
    pub max_cpus: Option<u32>,
    pub max_pids: Option<u64>,
    pub max_volumes: Option<u32>,
    pub max_snapshots: Option<u32>,
    pub max_images: Option<u32>,
}

impl QuotaOverrides {
    pub fn over(&self, d: store::Quotas) -> store::Quotas {
        store::Quotas {
            max_sandboxes: self.max_sandboxes.unwrap_or(d.max_sandboxes),
            max_memory_bytes: self.max_memory_bytes.unwrap_or(d.max_memory_bytes),
            max_storage_bytes: self.max_storage_bytes.unwrap_or(d.max_storage_bytes),
            max_file_bytes: self.max_file_bytes.unwrap_or(d.max_file_bytes),
            max_cpus: self.max_cpus.unwrap_or(d.max_cpus),
            max_pids: self.max_pids.unwrap_or(d.max_pids),
            max_volumes: self.max_volumes.unwrap_or(d.max_volumes),
            max_snapshots: self.max_snapshots.unwrap_or(d.max_snapshots),
            max_images: self.max_images.unwrap_or(d.max_images),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<store::ApiKey> for ApiKey {
    fn from(k: store::ApiKey) -> Self {
        ApiKey {
            id: k.id.to_string(),
            name: k.name,
            created_at: time(k.created_at),
            revoked_at: k.revoked_at.map(time),
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    /// The key itself: shown only in this answer.
    pub key: String,
    /// The same key in E2B's format (`e2b_` + hex), for E2B SDKs that
    /// check the format (`E2B_API_KEY`); the E2B API takes either.
    pub e2b_key: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct File {
    pub id: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub created_at: String,
    /// The upload scanner's verdict: `clean`, `error: <why>` (scanned
    /// fail-open), or null when no scanner is configured.
    pub scan: Option<String>,
}

impl From<store::FileMeta> for File {
    fn from(f: store::FileMeta) -> Self {
        File {
            id: f.id.to_string(),
            name: f.name,
            size: f.size,
            sha256: f.sha256,
            content_type: f.content_type,
            created_at: time(f.created_at),
            scan: f.scan,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadUrlRequest {
    pub name: String,
    /// 1 to 86400; default 900.
    pub expires_in_secs: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct UploadUrl {
    pub url: String,
    pub method: String,
    pub expires_at: String,
}

#[derive(Serialize, Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct SandboxLimits {
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    pub disk_mb: Option<u64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    /// `host` (default).
    pub image: Option<String>,
    /// Lifetime; default 300, at most 86400.
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// File ids, shown read-only at `/input/<name>`.
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub limits: Option<SandboxLimits>,
    pub workdir: Option<String>,
    /// Names of the tenant's secrets to set as environment variables (of
    /// the same names). Their values are never shown or stored with the
    /// sandbox, and are masked as `***` in the output the API returns.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// What the sandbox may reach; default `{"mode": "none"}`.
    pub network: Option<Network>,
    /// The isolation tier: `native` (default: namespaces, cgroups,
    /// Landlock and seccomp on the host kernel) or `gvisor` (gVisor's
    /// user-space kernel between the sandbox and the host; slower to start,
    /// a smaller host-kernel surface). A tier this server does not offer is
    /// refused with 400 `isolation_unavailable`; `GET /v1/isolation` lists them.
    pub isolation: Option<String>,
    /// Serve the sandbox's ports to anyone who knows its id, without a
    /// token: through `<port>-<id>.<domain>` host names or the
    /// `E2b-Sandbox-Id` and `E2b-Sandbox-Port` headers (E2B's public
    /// traffic). Default false: those need the sandbox's traffic or access
    /// token. `/v1/sandboxes/{id}/ports/{port}/...` with the API key works
    /// either way.
    #[serde(default)]
    pub public_ports: bool,
    /// Who the sandbox's processes run as: `sandbox` (default: uid 1000,
    /// home `/scratch`), `user` (uid 1001 with a writable home of its own,
    /// `/home/user`, also the default working directory: E2B's layout) or
    /// `root` (uid 0 of the sandbox: still no capabilities, still an
    /// unprivileged id on the host).
    pub user: Option<String>,
    /// A writable root: writes outside the sandbox's tmpfs mounts
    /// (`/usr/local`, `/etc`, `/opt`, a new `/workspace`...) go to a layer
    /// of the sandbox's own over the read-only image, gone with the
    /// sandbox. Native: the layer is a tmpfs of the disk limit's size.
    /// gVisor: it is held in gVisor's memory, within the memory limit.
    /// Writing there takes the user's permissions (the image's
    /// directories belong to root). `/input` stays read-only.
    #[serde(default)]
    pub writable_root: bool,
    /// The tenant's volumes to mount (at most 8), each by id or name. A
    /// volume outlives the sandbox; several sandboxes may mount one at
    /// once and see each other's writes as on one machine (no locking
    /// beyond what their programs do). On the gvisor tier a read-write
    /// volume cannot be combined with `writable_root`.
    #[serde(default)]
    pub volumes: Vec<crate::api_volumes::VolumeMount>,
    /// A snapshot of the tenant's (id or name) to start from: the sandbox
    /// starts with the snapshot's files, and its image, user and writable
    /// root are the snapshot's (`image`, if given, must be the same); its
    /// isolation tier and limits default to the snapshot's.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// What its timeout does: `kill` (default) or `pause` (see
    /// `POST /v1/sandboxes/{id}/pause`; a pause that cannot be kept kills
    /// it).
    #[serde(default)]
    pub on_timeout: Option<String>,
    /// Once paused, any request for it through `/v1` (or E2B's envd and
    /// ports) resumes it first, as E2B's `auto_resume`.
    #[serde(default)]
    pub auto_resume: bool,
}

/// The user named in a request (`None`: the default), or a 400.
pub fn parse_user(name: Option<&str>) -> crate::service::Result<warden_spec::SandboxUser> {
    match name {
        None => Ok(warden_spec::SandboxUser::default()),
        Some(n) => warden_spec::SandboxUser::from_name(n).ok_or_else(|| {
            crate::service::Error::invalid(format!(
                "user {n:?}: expected \"sandbox\", \"user\" or \"root\""
            ))
        }),
    }
}

/// The tier named in a request (`None`: the default), or a 400.
pub fn parse_isolation(name: Option<&str>) -> crate::service::Result<warden_spec::Isolation> {
    match name {
        None => Ok(warden_spec::Isolation::default()),
        Some(n) => warden_spec::Isolation::from_name(n).ok_or_else(|| {
            crate::service::Error::invalid(format!(
                "isolation {n:?}: expected \"native\" or \"gvisor\""
            ))
        }),
    }
}

/// How one isolation tier stands on this server.
#[derive(Serialize, ToSchema)]
pub struct IsolationTier {
    /// `native` | `gvisor`
    pub name: String,
    pub available: bool,
    /// What it runs on (e.g. the gVisor platform), or why it is unavailable.
    pub detail: String,
}

#[derive(Serialize, ToSchema)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub peak_memory_bytes: u64,
    pub wall_seconds: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Sandbox {
    pub id: String,
    /// running | stopped | timed_out | lost | failed
    pub state: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub limits: SandboxLimits,
    pub files: Vec<String>,
    /// Names of the secrets it was given.
    pub secrets: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub usage: Option<Usage>,
    pub network: Network,
    /// `native` | `gvisor`
    pub isolation: String,
    /// `sandbox` | `user` | `root`
    pub user: String,
    pub writable_root: bool,
    /// The volumes it mounts, each by id.
    pub volumes: Vec<crate::api_volumes::VolumeMount>,
    /// The snapshot it was started from, by id.
    pub snapshot: Option<String>,
    /// `kill` or `pause`: what its timeout does.
    pub on_timeout: String,
    /// Requests for it resume it when it is paused.
    pub auto_resume: bool,
}

/// What the server keeps of a create request in the sandbox record.
#[derive(Serialize, Deserialize, Default, Clone)]
pub struct StoredSpec {
    pub image: String,
    pub limits: SandboxLimits,
    pub files: Vec<String>,
    pub env_names: Vec<String>,
    pub workdir: String,
    #[serde(default = "Network::none")]
    pub network: Network,
    /// Names only: values are never stored with a sandbox.
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// Records made before tiers were selectable ran natively.
    #[serde(default)]
    pub isolation: warden_spec::Isolation,
    #[serde(default)]
    pub user: warden_spec::SandboxUser,
    #[serde(default)]
    pub writable_root: bool,
    #[serde(default)]
    pub volumes: Vec<crate::api_volumes::VolumeMount>,
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Its timeout pauses it rather than kills it.
    #[serde(default)]
    pub pause_on_timeout: bool,
    /// A request for it while it is paused resumes it.
    #[serde(default)]
    pub auto_resume: bool,
}

impl StoredSpec {
    /// The shape a record keeps (a sandbox's, or a snapshot's of one);
    /// one written before a field existed takes its default.
    pub fn of(spec: &serde_json::Value) -> StoredSpec {
        serde_json::from_value(spec.clone()).unwrap_or_default()
    }
}

impl From<store::SandboxRecord> for Sandbox {
    fn from(r: store::SandboxRecord) -> Self {
        let spec = StoredSpec::of(&r.spec);
        Sandbox {
            id: r.id.to_string(),
            state: r.state.as_str().into(),
            image: spec.image,
            labels: r.labels,
            limits: spec.limits,
            files: spec.files,
            network: spec.network,
            isolation: spec.isolation.name().into(),
            user: spec.user.name().into(),
            writable_root: spec.writable_root,
            volumes: spec.volumes,
            snapshot: spec.snapshot,
            on_timeout: if spec.pause_on_timeout {
                "pause"
            } else {
                "kill"
            }
            .into(),
            auto_resume: spec.auto_resume,
            secrets: spec.secret_names,
            created_at: time(r.created_at),
            expires_at: time(r.expires_at),
            ended_at: r.ended_at.map(time),
            end_reason: r.end_reason,
            usage: r.usage.map(|u| Usage {
                cpu_seconds: u.cpu_seconds,
                peak_memory_bytes: u.peak_memory_bytes,
                wall_seconds: u.wall_seconds,
            }),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTimeout {
    pub timeout_secs: u64,
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub at: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<store::AuditEntry> for AuditEntry {
    fn from(e: store::AuditEntry) -> Self {
        AuditEntry {
            seq: e.seq,
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            at: time(e.at),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UsageSum {
    pub from: String,
    pub to: String,
    pub sandboxes: u64,
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    pub max_peak_memory_bytes: u64,
    /// Storage in use now (whatever the window), as the storage quota
    /// counts it: uploaded files, review outputs and stored job logs,
    /// volumes, snapshots (each content once) and memory pauses'
    /// checkpoints.
    pub storage_bytes: u64,
}

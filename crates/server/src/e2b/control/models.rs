//! E2B's JSON shapes, spelled as the SDKs' generated clients read and
//! write them (`templateID`, `envVars`, `allow_internet_access`...).
//! Request fields Warden does not know are ignored, as E2B's API does;
//! the known ones it cannot honour are refused where they are checked.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `POST /sandboxes` and `POST /v2/sandboxes` (`NewSandbox`,
/// `NewSandboxV2`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    #[serde(rename = "templateID", default)]
    pub template_id: String,
    /// Seconds.
    pub timeout: Option<i64>,
    pub auto_pause: Option<bool>,
    /// E2B's default (true) or false: a pause at the timeout keeps the
    /// files either way. Typed so a wrong value is a 400.
    #[allow(dead_code)]
    pub auto_pause_memory: Option<bool>,
    pub auto_resume: Option<AutoResume>,
    /// Ignored: every sandbox has an access token.
    #[allow(dead_code)]
    pub secure: Option<bool>,
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
    pub network: Option<NetworkConfig>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub env_vars: Option<BTreeMap<String, String>>,
    /// Nothing for the server: the SDK starts the gateway in the sandbox.
    #[allow(dead_code)]
    pub mcp: Option<Value>,
    pub iam: Option<Value>,
    pub volume_mounts: Option<Vec<super::volumes::E2bVolumeMount>>,
}

#[derive(Deserialize)]
pub struct AutoResume {
    #[serde(default)]
    pub enabled: bool,
}

/// `SandboxNetworkConfig` (create) and `SandboxNetworkUpdateConfig`
/// (`PUT /sandboxes/{id}/network`, which adds `allow_internet_access`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    pub allow_out: Option<Vec<String>>,
    pub deny_out: Option<Vec<String>>,
    /// Accepted and unused: a sandbox has no DNS of its own; the egress
    /// proxy resolves allowed names itself.
    #[allow(dead_code)]
    pub dns_servers: Option<Vec<String>>,
    pub egress_proxy: Option<Value>,
    pub rules: Option<Value>,
    pub allow_public_traffic: Option<bool>,
    pub mask_request_host: Option<String>,
    pub https_ports: Option<Vec<u16>>,
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
}

/// `ConnectSandbox` (v1: timeout required) and `ConnectSandboxV2`.
#[derive(Deserialize, Default)]
pub struct ConnectSandbox {
    pub timeout: Option<i64>,
    /// Whether a paused sandbox resumes with its memory: a pause here
    /// keeps files only, so it resumes with them whatever this says.
    #[allow(dead_code)]
    pub memory: Option<bool>,
}

/// `SandboxTimeoutRequest`.
#[derive(Deserialize)]
pub struct TimeoutRequest {
    pub timeout: i64,
}

/// `SandboxRefreshRequest`.
#[derive(Deserialize, Default)]
pub struct RefreshRequest {
    pub duration: Option<i64>,
}

/// E2B's `Sandbox`: what create and connect answer.
#[derive(Serialize)]
pub struct CreatedSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    pub alias: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(rename = "envdVersion")]
    pub envd_version: &'static str,
    #[serde(rename = "envdAccessToken")]
    pub envd_access_token: String,
    #[serde(rename = "trafficAccessToken")]
    pub traffic_access_token: Option<String>,
    pub domain: Option<String>,
}

/// `ListedSandbox`; `SandboxDetail` adds the fields of [`Detail`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    #[serde(rename = "templateID")]
    pub template_id: String,
    pub alias: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub started_at: String,
    pub end_at: String,
    pub cpu_count: u64,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u64,
    pub metadata: BTreeMap<String, String>,
    /// Always `running`: Warden never pauses a sandbox.
    pub state: &'static str,
    pub envd_version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    #[serde(flatten)]
    pub listed: Listed,
    pub envd_access_token: String,
    pub domain: Option<String>,
    pub allow_internet_access: Option<bool>,
    pub network: NetworkInfo,
    pub lifecycle: Lifecycle,
}

/// A sandbox's egress in E2B's terms: what is allowed, and that
/// everything else is denied (`0.0.0.0/0`), which is always so here.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    pub allow_out: Vec<String>,
    pub deny_out: Vec<String>,
}

/// `SandboxLifecycle`: what its timeout does (`kill` or `pause`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub auto_resume: bool,
    pub on_timeout: &'static str,
}

/// `SandboxMetric`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub timestamp: String,
    pub timestamp_unix: i64,
    pub cpu_count: u64,
    pub cpu_used_pct: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
}

/// `SandboxLog` (v1's plain lines).
#[derive(Serialize)]
pub struct LogLine {
    pub timestamp: String,
    pub line: String,
}

/// `SandboxLogEntry`.
#[derive(Serialize)]
pub struct LogEntry {
    pub timestamp: String,
    pub message: String,
    /// debug | info | warn | error
    pub level: &'static str,
    pub fields: BTreeMap<String, String>,
}

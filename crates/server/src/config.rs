//! Server configuration: embedded defaults, then a TOML file, then
//! `WARDEN_*` environment variables, then command-line flags.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use warden_store::Quotas;

mod e2b;
mod egress;
mod limits;
mod policy;
mod secrets;
mod server;
mod uploads;
pub use e2b::E2bConfig;
pub use egress::EgressConfig;
pub use limits::LimitsConfig;
pub use policy::CommandPolicyConfig;
pub use secrets::SecretsConfig;
pub use server::ServerConfig;
pub use uploads::UploadsConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// SQLite database and object store live here.
    pub data_dir: PathBuf,
    /// Admin token; when absent one is generated and printed once, and only
    /// its hash is kept.
    pub admin_token: Option<String>,
    /// Key for signed upload URLs; when absent one is generated and kept in
    /// the database.
    pub signing_key: Option<String>,
    /// Key file for the audit chains (HMAC-SHA256 of entries and anchors);
    /// default `<data_dir>/audit.key`, created (mode 0600) when missing.
    /// Kept out of the database on purpose: whoever can rewrite the
    /// database must not be able to re-sign what they rewrote.
    pub audit_key_file: Option<PathBuf>,
    /// Base URL clients reach this server at (for signed upload URLs).
    pub public_url: Option<String>,
    /// Largest JSON request body.
    pub max_json_bytes: usize,
    /// Quotas given to new tenants.
    pub quotas: QuotaConfig,
    /// The operator's caps per sandbox and per job.
    pub limits: LimitsConfig,
    pub runtime: RuntimeConfig,
    /// Built images (`<images_dir>/<name>`, made by scripts/build-image.sh).
    pub images_dir: PathBuf,
    pub jobs: JobsConfig,
    pub webhooks: WebhookConfig,
    pub uploads: UploadsConfig,
    pub egress: EgressConfig,
    pub command_policy: CommandPolicyConfig,
    pub secrets: SecretsConfig,
    pub e2b: E2bConfig,
    pub server: ServerConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Review jobs running at once on this node.
    pub concurrency: u32,
    /// Review jobs of one tenant running at once (across nodes).
    pub per_tenant: u32,
    /// A worker renews its lease on a job every third of this; a job whose
    /// lease lapses (its node died) is picked up again.
    pub lease_secs: u64,
    /// Runs of a job before a failure of Warden's own is final.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt.
    pub retry_backoff_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow webhook targets on loopback and private ranges (refused by
    /// default: a tenant could otherwise make the server call inside the
    /// operator's network).
    pub allow_private: bool,
    /// Delivery attempts before giving up.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, capped at 5 minutes.
    pub retry_backoff_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            concurrency: 4,
            per_tenant: 2,
            lease_secs: 30,
            max_attempts: 3,
            retry_backoff_ms: 2000,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            max_attempts: 10,
            retry_backoff_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    pub max_sandboxes: u32,
    pub max_memory_bytes: u64,
    pub max_storage_bytes: u64,
    pub max_file_bytes: u64,
    pub max_cpus: u32,
    pub max_pids: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The init binary; default: next to the `warden` binary.
    pub init: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub cgroup_parent: String,
    pub favor_dynmods: bool,
    /// Native sandboxes pre-started (slot, cgroup, init cloned into its
    /// namespaces) ahead of time; 0: each start takes every step itself.
    pub prestart: usize,
    /// The gVisor tier: `auto` (offered when runsc and a platform work
    /// here; checked in the background at start-up), `required` (start-up
    /// fails without it) or `off`.
    pub gvisor: GvisorSetting,
    /// The runsc binary; default: `runsc` in `PATH`.
    pub runsc: Option<PathBuf>,
    /// A gVisor platform (`systrap`, `ptrace`, `kvm`); default: the first
    /// of systrap, ptrace that works here.
    pub gvisor_platform: Option<String>,
    /// gVisor sandboxes kept booted, their init waiting, once a gVisor
    /// sandbox has been asked for; 0: each start boots its own.
    pub gvisor_prestart: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GvisorSetting {
    Auto,
    Required,
    Off,
}

impl GvisorSetting {
    fn parse(v: &str) -> Result<GvisorSetting> {
        match v {
            "auto" => Ok(GvisorSetting::Auto),
            "required" => Ok(GvisorSetting::Required),
            "off" => Ok(GvisorSetting::Off),
            _ => anyhow::bail!("WARDEN_GVISOR={v:?}: expected auto, required or off"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            GvisorSetting::Auto => "auto",
            GvisorSetting::Required => "required",
            GvisorSetting::Off => "off",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7300)),
            data_dir: PathBuf::from("./warden-data"),
            admin_token: None,
            signing_key: None,
            audit_key_file: None,
            public_url: None,
            max_json_bytes: 1 << 20,
            quotas: QuotaConfig::default(),
            limits: LimitsConfig::default(),
            runtime: RuntimeConfig::default(),
            images_dir: PathBuf::from("/var/cache/warden/images"),
            jobs: JobsConfig::default(),
            webhooks: WebhookConfig::default(),
            uploads: UploadsConfig::default(),
            egress: EgressConfig::default(),
            command_policy: CommandPolicyConfig::default(),
            secrets: SecretsConfig::default(),
            e2b: E2bConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Default for QuotaConfig {
    fn default() -> Self {
        let q = Quotas::default();
        QuotaConfig {
            max_sandboxes: q.max_sandboxes,
            max_memory_bytes: q.max_memory_bytes,
            max_storage_bytes: q.max_storage_bytes,
            max_file_bytes: q.max_file_bytes,
            max_cpus: q.max_cpus,
            max_pids: q.max_pids,
        }
    }
}

impl QuotaConfig {
    pub fn quotas(&self) -> Quotas {
        Quotas {
            max_sandboxes: self.max_sandboxes,
            max_memory_bytes: self.max_memory_bytes,
            max_storage_bytes: self.max_storage_bytes,
            max_file_bytes: self.max_file_bytes,
            max_cpus: self.max_cpus,
            max_pids: self.max_pids,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            init: None,
            state_dir: PathBuf::from("/run/warden"),
            cgroup_parent: "warden".into(),
            favor_dynmods: true,
            prestart: warden_runtime::native::prestart::POOL_SIZE,
            gvisor: GvisorSetting::Auto,
            runsc: None,
            gvisor_platform: None,
            gvisor_prestart: warden_runtime::gvisor::pool::POOL_SIZE,
        }
    }
}

impl Config {
    /// Defaults, overlaid by `file` (if given) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut cfg = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", p.display()))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.uploads.allowed_types = crate::checks::kinds::known_types(&cfg.uploads.allowed_types)
            .map_err(|e| anyhow::anyhow!("[uploads] allowed_types: {e}"))?;
        Ok(cfg)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = get("WARDEN_LISTEN") {
            self.listen = v.parse().with_context(|| format!("WARDEN_LISTEN={v:?}"))?;
        }
        if let Some(v) = get("WARDEN_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("WARDEN_ADMIN_TOKEN").filter(|v| !v.is_empty()) {
            self.admin_token = Some(v);
        }
        if let Some(v) = get("WARDEN_SIGNING_KEY").filter(|v| !v.is_empty()) {
            self.signing_key = Some(v);
        }
        if let Some(v) = get("WARDEN_AUDIT_KEY_FILE").filter(|v| !v.is_empty()) {
            self.audit_key_file = Some(v.into());
        }
        if let Some(v) = get("WARDEN_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("WARDEN_INIT") {
            self.runtime.init = Some(v.into());
        }
        if let Some(v) = get("WARDEN_STATE_DIR") {
            self.runtime.state_dir = v.into();
        }
        if let Some(v) = get("WARDEN_CGROUP_PARENT") {
            self.runtime.cgroup_parent = v;
        }
        if let Some(v) = get("WARDEN_CGROUP_FAVOR_DYNMODS") {
            self.runtime.favor_dynmods = v != "0";
        }
        if let Some(v) = get("WARDEN_PRESTART") {
            self.runtime.prestart = v
                .parse()
                .with_context(|| format!("WARDEN_PRESTART={v:?}"))?;
        }
        if let Some(v) = get("WARDEN_GVISOR") {
            self.runtime.gvisor = GvisorSetting::parse(&v)?;
        }
        if let Some(v) = get("WARDEN_RUNSC").filter(|v| !v.is_empty()) {
            self.runtime.runsc = Some(v.into());
        }
        if let Some(v) = get("WARDEN_GVISOR_PLATFORM").filter(|v| !v.is_empty()) {
            self.runtime.gvisor_platform = Some(v);
        }
        if let Some(v) = get("WARDEN_GVISOR_PRESTART") {
            self.runtime.gvisor_prestart = v
                .parse()
                .with_context(|| format!("WARDEN_GVISOR_PRESTART={v:?}"))?;
        }
        if let Some(v) = get("WARDEN_IMAGES_DIR") {
            self.images_dir = v.into();
        }
        let num = |k: &str| -> Result<Option<u64>> {
            get(k)
                .map(|v| v.parse::<u64>().with_context(|| format!("{k}={v:?}")))
                .transpose()
        };
        if let Some(v) = num("WARDEN_JOBS_CONCURRENCY")? {
            self.jobs.concurrency = v.clamp(1, 1024) as u32;
        }
        if let Some(v) = num("WARDEN_JOBS_PER_TENANT")? {
            self.jobs.per_tenant = v.clamp(1, 1024) as u32;
        }
        if let Some(v) = num("WARDEN_JOBS_LEASE_SECS")? {
            self.jobs.lease_secs = v.max(1);
        }
        if let Some(v) = num("WARDEN_JOBS_RETRY_BACKOFF_MS")? {
            self.jobs.retry_backoff_ms = v;
        }
        if let Some(v) = get("WARDEN_WEBHOOKS_ALLOW_PRIVATE") {
            self.webhooks.allow_private = v == "1" || v == "true";
        }
        if let Some(v) = num("WARDEN_WEBHOOKS_RETRY_BACKOFF_MS")? {
            self.webhooks.retry_backoff_ms = v;
        }
        self.limits.apply_env(&num)?;
        self.secrets.apply_env(&get)?;
        self.uploads.apply_env(&get, &num)?;
        self.egress.apply_env(&get)?;
        self.e2b.apply_env(&get)?;
        self.server.apply_env(&num)?;
        self.command_policy.apply_env(&get, &num)
    }

    /// The audit key file in effect.
    pub fn audit_key_file(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.key"))
    }

    /// What signed URLs start with.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// A command (program and arguments) from the environment variable `key`:
/// a JSON array keeps arguments with spaces intact; otherwise the words of
/// the line.
fn command_from_env(key: &str, v: &str) -> Result<Vec<String>> {
    if v.trim_start().starts_with('[') {
        serde_json::from_str(v).with_context(|| format!("{key}={v:?}"))
    } else {
        Ok(v.split_whitespace().map(str::to_string).collect())
    }
}

fn mask(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "\"****\" (set)"
    } else {
        "(generated)"
    }
}

/// The effective configuration as TOML, secrets masked.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "listen = \"{}\"", self.listen)?;
        writeln!(f, "data_dir = {:?}", self.data_dir.display().to_string())?;
        writeln!(f, "admin_token = {}", mask(&self.admin_token))?;
        writeln!(f, "signing_key = {}", mask(&self.signing_key))?;
        writeln!(
            f,
            "audit_key_file = {:?}",
            self.audit_key_file().display().to_string()
        )?;
        writeln!(f, "public_url = \"{}\"", self.base_url())?;
        writeln!(f, "max_json_bytes = {}", self.max_json_bytes)?;
        let q = &self.quotas;
        writeln!(f, "[quotas]")?;
        writeln!(f, "max_sandboxes = {}", q.max_sandboxes)?;
        writeln!(f, "max_memory_bytes = {}", q.max_memory_bytes)?;
        writeln!(f, "max_storage_bytes = {}", q.max_storage_bytes)?;
        writeln!(f, "max_file_bytes = {}", q.max_file_bytes)?;
        writeln!(f, "max_cpus = {}", q.max_cpus)?;
        writeln!(f, "max_pids = {}", q.max_pids)?;
        write!(f, "{}", self.limits)?;
        let r = &self.runtime;
        writeln!(f, "[runtime]")?;
        match &r.init {
            Some(p) => writeln!(f, "init = {:?}", p.display().to_string())?,
            None => writeln!(f, "init = (next to the warden binary)")?,
        }
        writeln!(f, "state_dir = {:?}", r.state_dir.display().to_string())?;
        writeln!(f, "cgroup_parent = {:?}", r.cgroup_parent)?;
        writeln!(f, "favor_dynmods = {}", r.favor_dynmods)?;
        writeln!(f, "prestart = {}", r.prestart)?;
        writeln!(f, "gvisor = {:?}", r.gvisor.name())?;
        match &r.runsc {
            Some(p) => writeln!(f, "runsc = {:?}", p.display().to_string())?,
            None => writeln!(f, "runsc = (runsc in PATH)")?,
        }
        match &r.gvisor_platform {
            Some(p) => writeln!(f, "gvisor_platform = {p:?}")?,
            None => writeln!(f, "gvisor_platform = (first that works: systrap, ptrace)")?,
        }
        writeln!(f, "gvisor_prestart = {}", r.gvisor_prestart)?;
        writeln!(
            f,
            "images_dir = {:?}",
            self.images_dir.display().to_string()
        )?;
        let j = &self.jobs;
        writeln!(f, "[jobs]")?;
        writeln!(f, "concurrency = {}", j.concurrency)?;
        writeln!(f, "per_tenant = {}", j.per_tenant)?;
        writeln!(f, "lease_secs = {}", j.lease_secs)?;
        writeln!(f, "max_attempts = {}", j.max_attempts)?;
        writeln!(f, "retry_backoff_ms = {}", j.retry_backoff_ms)?;
        let w = &self.webhooks;
        writeln!(f, "[webhooks]")?;
        writeln!(f, "allow_private = {}", w.allow_private)?;
        writeln!(f, "max_attempts = {}", w.max_attempts)?;
        writeln!(f, "retry_backoff_ms = {}", w.retry_backoff_ms)?;
        write!(f, "{}", self.secrets)?;
        writeln!(f, "{}", self.uploads)?;
        write!(f, "{}", self.egress)?;
        write!(f, "{}", self.e2b)?;
        write!(f, "{}", self.server)?;
        write!(f, "{}", self.command_policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_and_secrets_masked() {
        let mut cfg: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nadmin_token = \"hunter2\"\n[quotas]\nmax_sandboxes = 3\n",
        )
        .unwrap();
        assert_eq!(cfg.quotas.max_sandboxes, 3);
        cfg.apply_env(|k| (k == "WARDEN_LISTEN").then(|| "127.0.0.1:9001".to_string()))
            .unwrap();
        assert_eq!(cfg.listen.port(), 9001);
        let shown = cfg.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("admin_token = \"****\""), "{shown}");
    }

    #[test]
    fn gvisor_setting_from_file_and_env() {
        let mut cfg: Config =
            toml::from_str("[runtime]\ngvisor = \"off\"\ngvisor_platform = \"ptrace\"\n").unwrap();
        assert_eq!(cfg.runtime.gvisor, GvisorSetting::Off);
        assert_eq!(cfg.runtime.gvisor_platform.as_deref(), Some("ptrace"));
        cfg.apply_env(|k| (k == "WARDEN_GVISOR").then(|| "required".to_string()))
            .unwrap();
        assert_eq!(cfg.runtime.gvisor, GvisorSetting::Required);
        assert!(cfg
            .apply_env(|k| (k == "WARDEN_GVISOR").then(|| "maybe".to_string()))
            .is_err());
        assert!(toml::from_str::<Config>("[runtime]\ngvisor = \"maybe\"\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
    }
}

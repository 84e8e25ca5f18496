//! Server configuration: embedded defaults, then a TOML file, then
//! `WARDEN_*` environment variables, then command-line flags.
//!
//! Each knob is declared once (`knobs!`, see `knobs.rs`): its type,
//! default, documentation and environment variable in one place; serde
//! reads it from TOML and shows the effective configuration as TOML.

use anyhow::{Context, Result};
use knobs::{knobs, masked, FromEnv};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use warden_store::Quotas;

mod builds;
mod e2b;
mod egress;
pub(crate) mod knobs;
mod limits;
mod policy;
mod secrets;
mod server;
mod uploads;
pub use builds::BuildsConfig;
pub use e2b::E2bConfig;
pub use egress::EgressConfig;
pub use limits::LimitsConfig;
pub use policy::CommandPolicyConfig;
pub use secrets::SecretsConfig;
pub use server::ServerConfig;
pub use uploads::UploadsConfig;

knobs! {
    #[derive(Debug)]
    pub struct Config {
        /// Address to listen on.
        pub listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7300)), env "WARDEN_LISTEN";
        /// SQLite database and object store live here.
        pub data_dir: PathBuf = PathBuf::from("./warden-data"), env "WARDEN_DATA_DIR";
        /// Admin token; when absent one is generated and printed once, and
        /// only its hash is kept.
        #[serde(serialize_with = "masked")]
        pub admin_token: Option<String> = None, env "WARDEN_ADMIN_TOKEN";
        /// Key for signed upload URLs; when absent one is generated and kept
        /// in the database.
        #[serde(serialize_with = "masked")]
        pub signing_key: Option<String> = None, env "WARDEN_SIGNING_KEY";
        /// Key file for the audit chains (HMAC-SHA256 of entries and
        /// anchors); default `<data_dir>/audit.key`, created (mode 0600)
        /// when missing. Kept out of the database on purpose: whoever can
        /// rewrite the database must not be able to re-sign what they
        /// rewrote.
        pub audit_key_file: Option<PathBuf> = None, env "WARDEN_AUDIT_KEY_FILE";
        /// Base URL clients reach this server at (for signed upload URLs);
        /// default `http://<listen>`.
        pub public_url: Option<String> = None, env "WARDEN_PUBLIC_URL";
        /// Largest JSON request body.
        pub max_json_bytes: usize = 1 << 20;
        /// Built images (`<images_dir>/<name>`, made by
        /// scripts/build-image.sh).
        pub images_dir: PathBuf = PathBuf::from("/var/cache/warden/images"),
            env "WARDEN_IMAGES_DIR";
        /// Quotas given to new tenants.
        pub quotas: QuotaConfig = QuotaConfig::default(), [section];
        /// The operator's caps per sandbox and per job.
        pub limits: LimitsConfig = LimitsConfig::default(), [section];
        pub runtime: RuntimeConfig = RuntimeConfig::default(), [section];
        pub jobs: JobsConfig = JobsConfig::default(), [section];
        pub webhooks: WebhookConfig = WebhookConfig::default(), [section];
        pub uploads: UploadsConfig = UploadsConfig::default(), [section];
        pub egress: EgressConfig = EgressConfig::default(), [section];
        pub builds: BuildsConfig = BuildsConfig::default(), [section];
        pub command_policy: CommandPolicyConfig = CommandPolicyConfig::default(), [section];
        pub secrets: SecretsConfig = SecretsConfig::default(), [section];
        pub e2b: E2bConfig = E2bConfig::default(), [section];
        pub server: ServerConfig = ServerConfig::default(), [section];
    }
}

knobs! {
    #[derive(Debug)]
    pub struct JobsConfig {
        /// Review jobs running at once on this node (1 to 1024).
        pub concurrency: u32 = 4, env "WARDEN_JOBS_CONCURRENCY";
        /// Review jobs of one tenant running at once, across nodes (1 to
        /// 1024).
        pub per_tenant: u32 = 2, env "WARDEN_JOBS_PER_TENANT";
        /// A worker renews its lease on a job every third of this; a job
        /// whose lease lapses (its node died) is picked up again.
        pub lease_secs: u64 = 30, env "WARDEN_JOBS_LEASE_SECS";
        /// Runs of a job before a failure of Warden's own is final.
        pub max_attempts: u32 = 3;
        /// First retry delay; doubled per attempt.
        pub retry_backoff_ms: u64 = 2000, env "WARDEN_JOBS_RETRY_BACKOFF_MS";
    }
}

knobs! {
    #[derive(Debug)]
    pub struct WebhookConfig {
        /// Allow webhook targets on loopback and private ranges (refused by
        /// default: a tenant could otherwise make the server call inside the
        /// operator's network).
        pub allow_private: bool = false, env "WARDEN_WEBHOOKS_ALLOW_PRIVATE";
        /// Delivery attempts before giving up.
        pub max_attempts: u32 = 10;
        /// First retry delay; doubled per attempt, capped at 5 minutes.
        pub retry_backoff_ms: u64 = 1000, env "WARDEN_WEBHOOKS_RETRY_BACKOFF_MS";
    }
}

knobs! {
    /// What a new tenant gets (see `warden_store::Quotas`).
    #[derive(Debug)]
    pub struct QuotaConfig {
        pub max_sandboxes: u32 = Quotas::default().max_sandboxes;
        pub max_memory_bytes: u64 = Quotas::default().max_memory_bytes;
        pub max_storage_bytes: u64 = Quotas::default().max_storage_bytes;
        pub max_file_bytes: u64 = Quotas::default().max_file_bytes;
        pub max_cpus: u32 = Quotas::default().max_cpus;
        pub max_pids: u64 = Quotas::default().max_pids;
        pub max_volumes: u32 = Quotas::default().max_volumes;
        pub max_snapshots: u32 = Quotas::default().max_snapshots;
        pub max_images: u32 = Quotas::default().max_images;
    }
}

knobs! {
    #[derive(Debug)]
    pub struct RuntimeConfig {
        /// The init binary; default: next to the `warden` binary.
        pub init: Option<PathBuf> = None, env "WARDEN_INIT";
        pub state_dir: PathBuf = PathBuf::from("/run/warden"), env "WARDEN_STATE_DIR";
        pub cgroup_parent: String = "warden".into(), env "WARDEN_CGROUP_PARENT";
        pub favor_dynmods: bool = true, env "WARDEN_CGROUP_FAVOR_DYNMODS";
        /// Native sandboxes pre-started (slot, cgroup, init cloned into its
        /// namespaces) ahead of time; 0: each start takes every step itself.
        pub prestart: usize = warden_runtime::native::prestart::POOL_SIZE,
            env "WARDEN_PRESTART";
        /// The gVisor tier: `auto` (offered when runsc and a platform work
        /// here; checked in the background at start-up), `required`
        /// (start-up fails without it) or `off`.
        pub gvisor: GvisorSetting = GvisorSetting::Auto, env "WARDEN_GVISOR";
        /// The runsc binary; default: `runsc` in `PATH`.
        pub runsc: Option<PathBuf> = None, env "WARDEN_RUNSC";
        /// A gVisor platform (`systrap`, `ptrace`, `kvm`); default: the
        /// first of systrap, ptrace that works here.
        pub gvisor_platform: Option<String> = None, env "WARDEN_GVISOR_PLATFORM";
        /// gVisor sandboxes kept booted, their init waiting, once a gVisor
        /// sandbox has been asked for; 0: each start boots its own.
        pub gvisor_prestart: usize = warden_runtime::gvisor::pool::POOL_SIZE,
            env "WARDEN_GVISOR_PRESTART";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GvisorSetting {
    Auto,
    Required,
    Off,
}

impl FromEnv for GvisorSetting {
    fn from_env(v: &str) -> std::result::Result<Self, String> {
        match v.trim() {
            "auto" => Ok(GvisorSetting::Auto),
            "required" => Ok(GvisorSetting::Required),
            "off" => Ok(GvisorSetting::Off),
            _ => Err("expected auto, required or off".into()),
        }
    }
}

impl JobsConfig {
    /// One to 1024 jobs at once, per node and per tenant; leases of at
    /// least a second.
    fn normalize(&mut self) {
        self.concurrency = self.concurrency.clamp(1, 1024);
        self.per_tenant = self.per_tenant.clamp(1, 1024);
        self.lease_secs = self.lease_secs.max(1);
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
            max_volumes: self.max_volumes,
            max_snapshots: self.max_snapshots,
            max_images: self.max_images,
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
        Ok(cfg)
    }

    /// The environment over what is set, then every section's checks and
    /// floors (applied to the file's values too).
    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        self.overlay_env(&get)?;
        self.jobs.normalize();
        self.limits.normalize();
        self.server.normalize();
        self.command_policy.normalize();
        self.secrets.normalize()?;
        self.uploads.normalize()?;
        self.egress.normalize()?;
        self.builds.normalize()?;
        self.e2b.normalize()
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

/// The effective configuration as TOML, secrets masked (`"****"` when
/// set); knobs left unset (generated keys, derived paths) are not shown.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = toml::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
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
    fn the_shown_configuration_reads_back_as_itself() {
        let mut cfg = Config::default();
        cfg.apply_env(|k| match k {
            "WARDEN_ADMIN_TOKEN" => Some("hunter2".into()),
            "WARDEN_RUNSC" => Some("/opt/runsc".into()),
            "WARDEN_UPLOADS_SCANNER" => Some("scan --fast {path}".into()),
            _ => None,
        })
        .unwrap();
        let shown = cfg.to_string();
        let again: Config = toml::from_str(&shown).expect("valid TOML of known knobs");
        assert_eq!(again.to_string(), shown);
        assert_eq!(
            again.runtime.runsc.as_deref(),
            Some(Path::new("/opt/runsc"))
        );
        assert_eq!(again.uploads.scanner, ["scan", "--fast", "{path}"]);
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn every_environment_variable_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        let all = [
            Config::ENV,
            QuotaConfig::ENV,
            LimitsConfig::ENV,
            RuntimeConfig::ENV,
            JobsConfig::ENV,
            WebhookConfig::ENV,
            UploadsConfig::ENV,
            EgressConfig::ENV,
            CommandPolicyConfig::ENV,
            SecretsConfig::ENV,
            E2bConfig::ENV,
            ServerConfig::ENV,
        ];
        let missing: Vec<&str> = all
            .concat()
            .into_iter()
            .filter(|v| !readme.contains(v))
            .collect();
        assert!(missing.is_empty(), "not in README.md: {missing:?}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
    }
}

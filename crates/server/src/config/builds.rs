//! `[builds]`: how tenants' images are built (`POST /v1/images`): each
//! step runs in a native sandbox as its root, whose egress is limited to
//! the package indexes named here.

use super::knobs::knobs;
use anyhow::Result;

knobs! {
    #[derive(Debug)]
    pub struct BuildsConfig {
        /// Hosts a build step may reach through its egress proxy (Debian's
        /// archive and PyPI by default; an operator's mirror instead).
        /// Empty: builds have no network (`file` and `run` steps only).
        pub allow_hosts: Vec<String> = [
            "deb.debian.org",
            "security.debian.org",
            "pypi.org",
            "files.pythonhosted.org",
        ]
        .map(String::from)
        .to_vec(), env "WARDEN_BUILDS_ALLOW_HOSTS";
        /// The index `pip` steps install from (`--index-url`); empty:
        /// pip's own default, PyPI.
        pub pip_index_url: String = String::new(), env "WARDEN_BUILDS_PIP_INDEX_URL";
        /// The Debian archive `apt` steps install from when the image has
        /// no apt sources of its own (operator images have none).
        pub apt_mirror: String = "http://deb.debian.org/debian".into(),
            env "WARDEN_BUILDS_APT_MIRROR";
        /// Its security archive.
        pub apt_security_mirror: String = "http://deb.debian.org/debian-security".into(),
            env "WARDEN_BUILDS_APT_SECURITY_MIRROR";
        /// Seconds one step may run (at least 10).
        pub step_timeout_secs: u64 = 1800, env "WARDEN_BUILDS_STEP_TIMEOUT_SECS";
        /// Memory of a build's sandbox, MiB (at least 256).
        pub memory_mb: u64 = 2048, env "WARDEN_BUILDS_MEMORY_MB";
        /// Disk of a build's sandbox (its writable root), MiB (at least
        /// 256).
        pub disk_mb: u64 = 4096, env "WARDEN_BUILDS_DISK_MB";
        /// Steps one image may have.
        pub max_steps: u64 = 32, env "WARDEN_BUILDS_MAX_STEPS";
    }
}

impl BuildsConfig {
    /// Floors, and hosts an egress rule accepts.
    pub(super) fn normalize(&mut self) -> Result<()> {
        self.step_timeout_secs = self.step_timeout_secs.max(10);
        self.memory_mb = self.memory_mb.max(256);
        self.disk_mb = self.disk_mb.max(256);
        self.max_steps = self.max_steps.clamp(1, 256);
        for h in &self.allow_hosts {
            warden_spec::EgressRule::parse(h)
                .map_err(|e| anyhow::anyhow!("[builds] allow_hosts {h:?}: {e}"))?;
        }
        let url = &self.pip_index_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!("[builds] pip_index_url must be an http(s) URL");
        }
        Ok(())
    }
}

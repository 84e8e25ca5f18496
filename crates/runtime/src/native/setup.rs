//! What the host tells a native sandbox's init to build, before the init
//! builds it (see `inside.rs`). Sent once over the setup pipe as JSON.

use serde::{Deserialize, Serialize};
use warden_protocol::InitConfig;
use warden_spec::{Image, Mount, SandboxSpec};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeSetup {
    pub image: Image,
    pub input_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub hostname: String,
    /// Size of each writable tmpfs.
    pub disk_bytes: u64,
    pub nofile: u64,
    /// uid/gid inside the sandbox that processes run as.
    pub uid: u32,
    /// An empty host directory the new root is built on (in the sandbox's
    /// own mount namespace: nothing is mounted on the host).
    pub staging_dir: String,
    /// Host templates for /etc (host image) and /dev (see `templates.rs`).
    pub etc_template: String,
    pub dev_template: String,
    pub init: InitConfig,
    /// How many host paths above arrive as descriptors on the control
    /// socket (and are named `/proc/self/fd/N`): see `handles.rs`.
    #[serde(default)]
    pub path_fds: usize,
}

/// The environment every command starts from.
pub fn base_env(spec: &SandboxSpec) -> Vec<(String, String)> {
    let home = if spec.user.uid() == 0 {
        "/root"
    } else {
        "/scratch"
    };
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), home.into()),
        ("USER".into(), user_name(spec.user.uid()).into()),
        ("LOGNAME".into(), user_name(spec.user.uid()).into()),
        ("HOSTNAME".into(), spec.hostname.clone()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("SHELL".into(), "/bin/sh".into()),
    ];
    if spec.network.rules().is_some() {
        // Every common client (curl, pip, requests, urllib, git, npm) reads
        // one spelling or the other; the proxy is the only way out.
        let proxy = format!("http://127.0.0.1:{}", warden_spec::EGRESS_PROXY_PORT);
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push((k.into(), proxy.clone()));
        }
        for k in ["NO_PROXY", "no_proxy"] {
            env.push((k.into(), "localhost,127.0.0.1,::1".into()));
        }
    }
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

pub fn user_name(uid: u32) -> &'static str {
    if uid == 0 {
        "root"
    } else {
        "sandbox"
    }
}

impl NativeSetup {
    pub fn from_spec(
        spec: &SandboxSpec,
        staging_dir: &str,
        templates: &super::templates::Templates,
    ) -> NativeSetup {
        NativeSetup {
            image: spec.image.clone(),
            input_dir: spec.input_dir.clone(),
            mounts: spec.mounts.clone(),
            hostname: spec.hostname.clone(),
            disk_bytes: spec.limits.disk_bytes,
            nofile: spec.limits.nofile,
            uid: spec.user.uid(),
            staging_dir: staging_dir.to_string(),
            etc_template: templates.etc.to_string_lossy().into_owned(),
            dev_template: templates.dev.to_string_lossy().into_owned(),
            init: InitConfig {
                env: base_env(spec),
                workdir: spec.workdir.clone(),
            },
            path_fds: 0,
        }
    }
}

/// The setup message: `u32` LE length of the JSON, the JSON, then the
/// compiled seccomp filter (`warden_confine::CompiledFilter::to_bytes`).
pub fn encode_message(json: &[u8], seccomp: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(4 + json.len() + seccomp.len());
    m.extend_from_slice(&(json.len() as u32).to_le_bytes());
    m.extend_from_slice(json);
    m.extend_from_slice(seccomp);
    m
}

/// Splits a setup message into its JSON and filter parts.
pub fn decode_message(m: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(m.get(..4)?.try_into().ok()?) as usize;
    let json = m.get(4..4 + len)?;
    Some((json, &m[4 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_messages_round_trip_and_reject_truncation() {
        let m = encode_message(b"{\"a\":1}", &[1, 2, 3]);
        assert_eq!(
            decode_message(&m),
            Some((&b"{\"a\":1}"[..], &[1u8, 2, 3][..]))
        );
        assert_eq!(decode_message(&m[..6]), None);
        assert_eq!(decode_message(&[1, 0]), None);
    }
}

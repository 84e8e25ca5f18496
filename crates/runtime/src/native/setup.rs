//! What the host tells a native sandbox's init to build, drawn from a
//! spec: the [`NativeSetup`] (its shape is `warden_inside::setup`, which
//! the init reads) and the environment every command starts from (shared
//! with the gVisor tier).

use warden_inside::setup::NativeSetup;
use warden_protocol::InitConfig;
use warden_spec::SandboxSpec;

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

/// What the init builds for `spec` on `staging_dir` with `templates`.
pub fn describe(
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

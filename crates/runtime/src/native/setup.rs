//! What the host tells a native sandbox's init to build, drawn from a
//! spec: the [`NativeSetup`] (its shape is `warden_inside::setup`, which
//! the init reads) and the environment every command starts from (shared
//! with the gVisor tier).

use warden_inside::setup::NativeSetup;
use warden_protocol::InitConfig;
use warden_spec::{SandboxSpec, SandboxUser, USER_HOME};

/// The environment every command starts from.
pub fn base_env(spec: &SandboxSpec) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), spec.user.home().into()),
        ("USER".into(), spec.user.name().into()),
        ("LOGNAME".into(), spec.user.name().into()),
        ("HOSTNAME".into(), spec.hostname.clone()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("SHELL".into(), "/bin/sh".into()),
    ];
    if spec.user == SandboxUser::User {
        // E2B's layout: `pip install` as `user` goes to ~/.local (the
        // image's packages are root's), which Debian's PEP 668 marker would
        // refuse without this; E2B's images carry no such marker.
        env.push(("PIP_BREAK_SYSTEM_PACKAGES".into(), "1".into()));
    }
    if spec.network.rules().is_some() {
        // Every common client (curl, pip, requests, urllib, git, npm) reads
        // one spelling or the other; the proxy is the only way out.
        let proxy = format!("http://127.0.0.1:{}", warden_spec::EGRESS_PROXY_PORT);
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push((k.into(), proxy.clone()));
        }
        for k in ["NO_PROXY", "no_proxy"] {
            env.push((k.into(), "localhost,127.0.0.1,::1,0.0.0.0".into()));
        }
    }
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// The name the sandbox's `/etc/passwd` gives `uid` (every image's /etc
/// carries Warden's own accounts), or `None` for an id it does not name.
pub fn user_name(uid: u32) -> Option<&'static str> {
    SandboxUser::ALL
        .into_iter()
        .find(|u| u.uid() == uid)
        .map(SandboxUser::name)
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
        own_home: (spec.user == SandboxUser::User).then(|| USER_HOME.to_string()),
        writable_root: spec.writable_root,
        usr_dir: None,
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

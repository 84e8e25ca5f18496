//! One build step: its sandbox on the image so far, its command (output
//! sent as progress), and what it changed kept as a layer.

use super::{Events, Plan, Planned};
use crate::api::{SandboxLimits, StoredSpec};
use crate::api_images::{BuildEvent, Step};
use crate::auth::Caller;
use crate::manager::{Live, SandboxLaunch};
use crate::service::{snapshots, Error, Result};
use crate::snapshots::{Manifest, Scope};
use crate::state::Shared;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use warden_protocol::{ExecRequest, Request, Response};
use warden_spec::{Image, Isolation, SandboxSpec, SandboxUser};
use warden_store::{
    now_ms, FileMeta, LayerRecord, SandboxId, SandboxRecord, SandboxState, SnapshotPurpose,
};

/// What a layer takes: the whole root but the scratch places, caches and
/// logs (and what no snapshot takes).
fn layer_scope() -> Scope {
    let mut scope = Scope::of(true, []);
    scope.roots = vec!["/".into()];
    scope.skip.extend(
        [
            "/tmp",
            "/scratch",
            "/output",
            "/root",
            warden_spec::USER_HOME,
            "/var/cache/apt",
            "/var/lib/apt/lists",
            "/var/log",
        ]
        .map(String::from),
    );
    scope
}

/// Runs one step in a sandbox on `below` and keeps what it changed.
pub(super) async fn run(
    st: &Shared,
    caller: &Caller,
    plan: &Plan,
    p: &Planned,
    (parent, below_content): (Option<&String>, &str),
    below: PathBuf,
    events: &Events,
) -> Result<LayerRecord> {
    let live = start(st, caller, plan, p, below).await?;
    let done = async {
        // Everything the set-up wrote is older than this (file times come
        // from a coarse clock: keep clear of it on both sides).
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let since = wall_ns() - 20_000_000;
        execute(st, caller, &live, p, events).await?;
        let (snap, manifest) = snapshots::take_in(
            st,
            &caller.store,
            &live,
            (serde_json::json!({}), None, SnapshotPurpose::Layer),
            &layer_scope(),
            since,
        )
        .await?;
        let packages = packages(&live).await;
        Ok::<_, Error>(LayerRecord {
            tenant_id: caller.store.tenant_id().clone(),
            key: p.key.clone(),
            parent: parent.cloned(),
            base: plan.root_base.clone(),
            snapshot_id: snap.id,
            content_sha256: content_digest(below_content, &manifest),
            packages,
            created_at: now_ms(),
        })
    }
    .await;
    st.sandboxes
        .destroy(
            caller.store.tenant_id(),
            &live.id,
            SandboxState::Stopped,
            "image build step done",
            caller.actor(),
        )
        .await;
    done
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The digest of the image below and what a layer changed (paths, kinds,
/// modes, contents, link targets, directories' names; not times).
fn content_digest(below: &str, m: &Manifest) -> String {
    let mut h = Sha256::new();
    h.update(below.as_bytes());
    for e in &m.entries {
        let line = match e {
            crate::snapshots::Entry::Dir {
                path, mode, names, ..
            } => format!("d {path} {mode:o} {}\n", names.join("/")),
            crate::snapshots::Entry::File {
                path, mode, sha256, ..
            } => format!("f {path} {mode:o} {sha256}\n"),
            crate::snapshots::Entry::Symlink { path, target, .. } => {
                format!("l {path} {target}\n")
            }
        };
        h.update(line.as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// Starts a step's sandbox (one of the tenant's slots, its quotas).
async fn start(
    st: &Shared,
    caller: &Caller,
    plan: &Plan,
    p: &Planned,
    below: PathBuf,
) -> Result<Arc<Live>> {
    let b = &st.cfg.builds;
    let mut spec = SandboxSpec {
        image: Image::Dir(below.to_string_lossy().into_owned()),
        isolation: Isolation::Native,
        user: SandboxUser::Root,
        writable_root: true,
        ..SandboxSpec::default()
    };
    let timeout = b.step_timeout_secs + 60;
    spec.limits.timeout = Some(std::time::Duration::from_secs(timeout));
    spec.limits.memory_bytes = Some(b.memory_mb << 20);
    spec.limits.cpu_millicores = Some(1000);
    spec.limits.pids = Some(1024);
    spec.limits.disk_bytes = b.disk_mb << 20;
    spec.workdir = "/root".into();
    let mut env = BTreeMap::new();
    env.insert("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string());
    env.insert("PIP_NO_CACHE_DIR".into(), "1".into());
    env.insert("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into());
    env.insert("PIP_BREAK_SYSTEM_PACKAGES".into(), "1".into());
    env.insert("PIP_ROOT_USER_ACTION".into(), "ignore".into());
    env.insert("WARDEN_APT_MIRROR".into(), b.apt_mirror.clone());
    env.insert("WARDEN_APT_SECURITY".into(), b.apt_security_mirror.clone());
    if let Some(rest) = b.pip_index_url.strip_prefix("http://") {
        // pip ignores a plain-HTTP index unless told to trust its host.
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        env.insert("PIP_TRUSTED_HOST".into(), host.to_string());
    }
    spec.env = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let network = crate::api_network::Network {
        mode: if b.allow_hosts.is_empty() {
            "none"
        } else {
            "allowlist"
        }
        .into(),
        rules: b
            .allow_hosts
            .iter()
            .filter_map(|h| warden_spec::EgressRule::parse(h).ok())
            .map(|r| crate::api_network::EgressRuleBody {
                host: r.host,
                ports: r.ports,
            })
            .collect(),
    };
    spec.network = network.to_mode()?;
    spec.validate().map_err(|e| Error::invalid(e.to_string()))?;
    let limits = SandboxLimits {
        memory_mb: Some(b.memory_mb),
        cpus: Some(1.0),
        pids: Some(1024),
        disk_mb: Some(b.disk_mb),
    };
    let files: Vec<FileMeta> = p.file.iter().cloned().collect();
    let stored = StoredSpec {
        image: plan.name.clone(),
        limits,
        files: files.iter().map(|f| f.id.to_string()).collect(),
        env_names: env.keys().cloned().collect(),
        workdir: spec.workdir.clone(),
        network: crate::api_network::Network::from_mode(&spec.network),
        secret_names: Vec::new(),
        isolation: Isolation::Native,
        user: SandboxUser::Root,
        writable_root: true,
        volumes: Vec::new(),
        snapshot: None,
        pause_on_timeout: false,
        auto_resume: false,
    };
    let now = now_ms();
    let mut labels = BTreeMap::new();
    labels.insert("warden.image-build".to_string(), plan.name.clone());
    let record = SandboxRecord {
        id: SandboxId::generate(),
        tenant_id: caller.store.tenant_id().clone(),
        state: SandboxState::Running,
        spec: serde_json::to_value(&stored).map_err(|e| Error::internal("encoding", e))?,
        labels,
        memory_bytes: b.memory_mb << 20,
        owner: String::new(),
        created_at: now,
        expires_at: now + timeout as i64 * 1000,
        ended_at: None,
        end_reason: None,
        usage: None,
    };
    let id = record.id.clone();
    st.sandboxes
        .create(
            &caller.store,
            SandboxLaunch {
                spec,
                files,
                record,
                takes_slot: true,
                masker: None,
                public_ports: false,
                volumes: Vec::new(),
                restore: None,
                resuming: false,
                plain_env: env,
                pause_on_timeout: false,
                from_checkpoint: None,
                keep_base: None,
            },
        )
        .await?;
    st.sandboxes
        .get(caller.store.tenant_id(), &id)
        .ok_or_else(|| Error::conflict("the build's sandbox ended as it started"))
}

/// An `apt` step: the image's own sources, else the operator's mirror
/// for the image's Debian release (the list in /tmp, which no layer
/// keeps); apt's own privilege drop is off (the sandbox's root has no
/// capabilities to drop).
const APT_SCRIPT: &str = r#"set -e
O="-o APT::Sandbox::User=root"
if ! ls /etc/apt/sources.list.d/* >/dev/null 2>&1 && ! grep -qs '^deb ' /etc/apt/sources.list; then
  . /etc/os-release
  k=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p /tmp/warden-apt.d
  {
    echo "deb [signed-by=$k] $WARDEN_APT_MIRROR $VERSION_CODENAME main"
    echo "deb [signed-by=$k] $WARDEN_APT_MIRROR $VERSION_CODENAME-updates main"
    echo "deb [signed-by=$k] $WARDEN_APT_SECURITY $VERSION_CODENAME-security main"
  } > /tmp/warden-apt.list
  O="$O -o Dir::Etc::SourceList=/tmp/warden-apt.list -o Dir::Etc::SourceParts=/tmp/warden-apt.d"
fi
apt-get $O update
apt-get $O install -y --no-install-recommends "$@"
apt-get $O clean
"#;

/// The step's command (argv: nothing of a step is pasted into a shell
/// line; `run` is a shell command by definition).
fn command(st: &Shared, p: &Planned) -> Vec<String> {
    let sh = |script: &str, args: &[String]| {
        let mut v = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
        v.extend(args.iter().cloned());
        v
    };
    match &p.step {
        Step::Apt(pkgs) => sh(APT_SCRIPT, pkgs),
        Step::Pip(reqs) => {
            let mut v: Vec<String> = ["python3", "-m", "pip", "install"]
                .map(String::from)
                .to_vec();
            if !st.cfg.builds.pip_index_url.is_empty() {
                v.push("--index-url".into());
                v.push(st.cfg.builds.pip_index_url.clone());
            }
            v.push("--".into());
            v.extend(reqs.iter().cloned());
            v
        }
        Step::Run(c) => vec!["sh".into(), "-c".into(), c.clone()],
        Step::File(f) => {
            let name = p.file.as_ref().map(|m| m.name.clone()).unwrap_or_default();
            sh(
                "set -e; mkdir -p \"$(dirname \"$2\")\"; cp \"$1\" \"$2\"; chmod \"$3\" \"$2\"",
                &[
                    format!("/input/{name}"),
                    f.path.clone(),
                    format!("{:o}", f.mode.unwrap_or(0o644)),
                ],
            )
        }
    }
}

/// Runs the step's command, its output sent as progress.
async fn execute(
    st: &Shared,
    caller: &Caller,
    live: &Live,
    p: &Planned,
    events: &Events,
) -> Result<()> {
    let mut req = ExecRequest::argv(command(st, p));
    req.timeout_ms = Some(st.cfg.builds.step_timeout_secs * 1000);
    crate::command_policy::enforce(
        st,
        &crate::command_policy::Exec::sandbox(
            caller.store.tenant_id(),
            caller.actor(),
            live.id.as_str(),
            &req,
        ),
    )
    .await?;
    let mut stream = live.client.stream(Request::Exec(req))?;
    loop {
        let out = |stream: &str, d: Vec<u8>| BuildEvent::Output {
            stream: stream.into(),
            data: String::from_utf8_lossy(&d).into_owned(),
        };
        match stream.next().await? {
            Some(Response::Stdout(d)) => events.send(out("stdout", d)).await?,
            Some(Response::Stderr(d)) => events.send(out("stderr", d)).await?,
            Some(Response::Started { .. }) => {}
            Some(Response::Exited(status)) => {
                return match (status.code, status.signal) {
                    _ if status.timed_out => Err(Error::invalid(format!(
                        "the step ran past [builds] step_timeout_secs ({} s)",
                        st.cfg.builds.step_timeout_secs
                    ))),
                    (Some(0), _) => Ok(()),
                    (Some(c), _) => Err(Error::invalid(format!(
                        "the step failed: its command exited with code {c}"
                    ))),
                    (None, s) => Err(Error::invalid(format!(
                        "the step failed: its command was killed by signal {}",
                        s.unwrap_or_default()
                    ))),
                };
            }
            Some(other) => {
                return Err(Error::internal(
                    "running a build step",
                    format!("unexpected reply {other:?}"),
                ))
            }
            None => {
                return Err(Error::internal(
                    "running a build step",
                    "the command's stream ended early",
                ))
            }
        }
    }
}

/// `name=version` of the image's Debian and Python packages as the step
/// left them (none if neither tool answers).
async fn packages(live: &Live) -> Vec<String> {
    let req = ExecRequest::argv(
        [
            "sh",
            "-c",
            "dpkg-query -W -f '${Package}=${Version}\\n' 2>/dev/null; \
             python3 -m pip list --format=freeze 2>/dev/null | sed 's/==/=/'",
        ]
        .map(String::from)
        .to_vec(),
    );
    let Ok(out) = live.client.exec_collect(req).await else {
        return Vec::new();
    };
    let mut list: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('='))
        .map(str::to_string)
        .collect();
    list.sort();
    list.dedup();
    list
}

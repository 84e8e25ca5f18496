//! Sandboxes, whoever asks: find a tenant's live sandbox, check what a
//! create asks for (limits against the operator's caps, labels, inputs),
//! create one (audited, whatever the outcome), move its expiry.

use crate::api::{self, CreateSandbox, SandboxLimits, StoredSpec};
use crate::auth::Caller;
use crate::manager::{Live, SandboxLaunch};
use crate::service::audit::{Action, Audit};
use crate::service::{Error, Result};
use crate::state::Shared;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use warden_spec::SandboxSpec;
use warden_store::{now_ms, FileId, FileMeta, SandboxId, SandboxRecord, SandboxState, TenantStore};

pub const MAX_TIMEOUT_SECS: u64 = 86_400;
const MAX_LABELS: usize = 32;

pub fn sandbox_id(id: &str) -> Result<SandboxId> {
    SandboxId::parse(id).ok_or_else(|| Error::not_found("sandbox"))
}

/// The live sandbox `id` of the caller's tenant, or 404 (also for another
/// tenant's id, and 409 for one of its own that has ended).
pub async fn live(st: &Shared, caller: &Caller, id: &str) -> Result<Arc<Live>> {
    let id = sandbox_id(id)?;
    if let Some(l) = st.sandboxes.get(caller.store.tenant_id(), &id) {
        return Ok(l);
    }
    // A paused sandbox made to resume on traffic resumes now.
    if let Some(l) =
        crate::service::pause::auto_resume(st, &caller.store, caller.actor(), &id).await?
    {
        return Ok(l);
    }
    match caller.store.get_sandbox(&id).await? {
        Some(r) => Err(Error::conflict(format!(
            "the sandbox is {} ({})",
            r.state.as_str(),
            r.end_reason.unwrap_or_default()
        ))),
        None => Err(Error::not_found("sandbox")),
    }
}

/// The tenant's files a request names for `/input`: each must exist (an
/// id of another tenant is "not found"), and their names must be distinct.
pub async fn input_files(store: &TenantStore, raw_ids: &[String]) -> Result<Vec<FileMeta>> {
    let mut files = Vec::new();
    let mut names = HashSet::new();
    for raw in raw_ids {
        let not_found = || Error::not_found(format!("file {raw:?}"));
        let id = FileId::parse(raw).ok_or_else(not_found)?;
        let f = store.get_file(&id).await?.ok_or_else(not_found)?;
        if !names.insert(f.name.clone()) {
            return Err(Error::invalid(format!(
                "two files are named {:?}; /input needs distinct names",
                f.name
            )));
        }
        files.push(f);
    }
    Ok(files)
}

pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(Error::invalid(format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in labels {
        let key_ok = (1..=63).contains(&k.len())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        if !key_ok {
            return Err(Error::invalid(format!(
                "label key {k:?}: 1-63 characters of [A-Za-z0-9_.-/]"
            )));
        }
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "label {k:?}: values are up to 256 printable characters"
            )));
        }
    }
    Ok(())
}

/// Checks a request's limits (against fixed ranges and the operator's
/// `[limits]` caps, which keep one sandbox from asking for more CPUs than
/// the host has or a share of its PIDs) and sets them on `spec`.
pub fn limits_spec(
    l: &SandboxLimits,
    spec: &mut SandboxSpec,
    caps: &crate::config::LimitsConfig,
) -> Result<SandboxLimits> {
    let memory_mb = l.memory_mb.unwrap_or(512);
    let cpus = l.cpus.unwrap_or(1.0);
    let pids = l.pids.unwrap_or(256);
    let disk_mb = l.disk_mb.unwrap_or(256);
    if !(16..=1 << 20).contains(&memory_mb) {
        return Err(Error::invalid("limits.memory_mb must be 16 to 1048576"));
    }
    if !(cpus.is_finite() && cpus >= 0.01) {
        return Err(Error::invalid("limits.cpus must be at least 0.01"));
    }
    if cpus > f64::from(caps.max_cpus) {
        return Err(Error::invalid(format!(
            "limits.cpus: {cpus} is over this server's limit of {} CPUs per sandbox \
             ([limits] max_cpus)",
            caps.max_cpus
        )));
    }
    if pids < 8 {
        return Err(Error::invalid("limits.pids must be at least 8"));
    }
    if pids > caps.max_pids {
        return Err(Error::invalid(format!(
            "limits.pids: {pids} is over this server's limit of {} PIDs per sandbox \
             ([limits] max_pids)",
            caps.max_pids
        )));
    }
    if !(1..=1 << 20).contains(&disk_mb) {
        return Err(Error::invalid("limits.disk_mb must be 1 to 1048576"));
    }
    spec.limits.memory_bytes = Some(memory_mb << 20);
    spec.limits.cpu_millicores = Some((cpus * 1000.0).round() as u64);
    spec.limits.pids = Some(pids);
    spec.limits.disk_bytes = disk_mb << 20;
    Ok(SandboxLimits {
        memory_mb: Some(memory_mb),
        cpus: Some(cpus),
        pids: Some(pids),
        disk_mb: Some(disk_mb),
    })
}

/// What a sandbox is asked to be, whoever asks (an interactive create, a
/// review job): everything of its spec but its inputs and secrets.
pub struct Shape<'a> {
    pub image: &'a str,
    pub isolation: Option<&'a str>,
    pub limits: &'a SandboxLimits,
    pub env: &'a BTreeMap<String, String>,
    pub network: Option<&'a api::Network>,
    pub workdir: Option<&'a str>,
    pub timeout_secs: u64,
    pub user: Option<&'a str>,
    pub writable_root: bool,
}

/// A shape made into a spec, with the limits as granted and the image's
/// identity (for a job's manifest).
pub struct Planned {
    pub spec: SandboxSpec,
    pub limits: SandboxLimits,
    pub identity: crate::images::ImageIdentity,
}

/// The spec for a shape on its image (resolved by
/// `service::images::resolve`): the tier named, the lifetime
/// and limits checked (against the operator's caps), the network's rules
/// checked. The caller adds inputs and secrets.
pub fn spec_for(
    shape: &Shape,
    cfg: &crate::config::Config,
    (image, identity): (warden_spec::Image, crate::images::ImageIdentity),
) -> Result<Planned> {
    let isolation = api::parse_isolation(shape.isolation)?;
    let user = api::parse_user(shape.user)?;
    let mut spec = SandboxSpec {
        image,
        isolation,
        user,
        writable_root: shape.writable_root,
        ..SandboxSpec::default()
    };
    if user == warden_spec::SandboxUser::User {
        // Its home is its working directory, as in E2B.
        spec.workdir = warden_spec::USER_HOME.into();
    }
    if !(1..=MAX_TIMEOUT_SECS).contains(&shape.timeout_secs) {
        return Err(Error::invalid(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    // The server enforces the lifetime itself (expires_at).
    spec.limits.timeout = Some(Duration::from_secs(shape.timeout_secs));
    let limits = limits_spec(shape.limits, &mut spec, &cfg.limits)?;
    if let Some(w) = shape.workdir {
        spec.workdir = w.to_string();
    }
    spec.env = shape
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    spec.network = shape.network.cloned().unwrap_or_default().to_mode()?;
    spec.validate().map_err(|e| Error::invalid(e.to_string()))?;
    Ok(Planned {
        spec,
        limits,
        identity,
    })
}

/// Creates a sandbox and audits the attempt (both APIs create through
/// here).
pub async fn create_audited(
    caller: &Caller,
    st: &Shared,
    req: CreateSandbox,
) -> Result<SandboxRecord> {
    create_audited_from(caller, st, req, None).await
}

/// A snapshot a sandbox starts from: its record, shape and manifest.
pub type From = (
    warden_store::SnapshotRecord,
    StoredSpec,
    crate::snapshots::Manifest,
);

/// Creates a sandbox holding `from`'s files (else those of the snapshot
/// the request names, if any), audited.
pub async fn create_audited_from(
    caller: &Caller,
    st: &Shared,
    req: CreateSandbox,
    from: Option<From>,
) -> Result<SandboxRecord> {
    if st.draining() {
        return Err(Error::ShuttingDown("the server is shutting down".into()));
    }
    let result = create_inner(caller, st, req, from).await;
    let (target, outcome) = match &result {
        Ok(r) => (r.id.to_string(), "ok".to_string()),
        Err(e) => (String::new(), e.code().to_string()),
    };
    crate::service::audit::append(
        st.meta.as_ref(),
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action: Action::SandboxCreate,
            target: &target,
            outcome: &outcome,
        },
    )
    .await?;
    result
}

async fn create_inner(
    caller: &Caller,
    st: &Shared,
    mut req: CreateSandbox,
    from: Option<From>,
) -> Result<SandboxRecord> {
    let from = match (from, &req.snapshot) {
        (Some(f), _) => Some(f),
        (None, Some(s)) => Some(crate::service::snapshots::for_start(&caller.store, s).await?),
        (None, None) => None,
    };
    if let Some((_, shape, _)) = &from {
        from_snapshot(&mut req, shape)?;
    }
    let image = req.image.clone().unwrap_or_else(|| "host".into());
    let asked_limits = req.limits.clone().unwrap_or_default();
    let timeout = req.timeout_secs.unwrap_or(300);
    let Planned {
        mut spec, limits, ..
    } = spec_for(
        &Shape {
            image: &image,
            isolation: req.isolation.as_deref(),
            limits: &asked_limits,
            env: &req.env,
            network: req.network.as_ref(),
            workdir: req.workdir.as_deref(),
            timeout_secs: timeout,
            user: req.user.as_deref(),
            writable_root: req.writable_root,
        },
        &st.cfg,
        crate::service::images::resolve(st, &caller.store, &image).await?,
    )?;
    let isolation = spec.isolation;
    check_labels(&req.labels)?;
    let pause_on_timeout = match req.on_timeout.as_deref() {
        None | Some("kill") => false,
        Some("pause") => true,
        Some(o) => return Err(Error::invalid(format!("on_timeout {o:?}: kill or pause"))),
    };
    // Before any file is copied or secret decrypted.
    st.sandboxes.check_isolation(isolation).await?;
    let files = input_files(&caller.store, &req.files).await?;
    // Decrypted only now, into the in-memory spec; the record keeps names.
    let secrets = crate::secrets::resolve(
        st.vault.as_ref(),
        &caller.store,
        &req.secrets,
        req.env.keys(),
    )
    .await?;
    secrets.add_env(&mut spec.env);
    let (mounts, volumes) =
        crate::service::volumes::leases_for(st, &caller.store, &req.volumes).await?;
    let mounted: Vec<_> = req
        .volumes
        .iter()
        .zip(&volumes)
        .map(|(m, lease)| crate::api_volumes::VolumeMount {
            volume: lease.id().to_string(),
            ..m.clone()
        })
        .collect();
    spec.mounts.extend(mounts);
    spec.validate().map_err(|e| Error::invalid(e.to_string()))?;
    let now = now_ms();
    let stored = StoredSpec {
        image,
        limits,
        files: req.files.clone(),
        env_names: req.env.keys().cloned().collect(),
        workdir: spec.workdir.clone(),
        network: api::Network::from_mode(&spec.network),
        secret_names: req.secrets.clone(),
        isolation,
        user: spec.user,
        writable_root: spec.writable_root,
        volumes: mounted,
        snapshot: from.as_ref().map(|(snap, _, _)| snap.id.to_string()),
        pause_on_timeout,
        auto_resume: req.auto_resume,
    };
    let record = SandboxRecord {
        id: SandboxId::generate(),
        tenant_id: caller.store.tenant_id().clone(),
        state: SandboxState::Running,
        spec: serde_json::to_value(&stored).map_err(|e| Error::internal("encoding", e))?,
        labels: req.labels,
        memory_bytes: spec.limits.memory_bytes.unwrap_or(0),
        owner: String::new(),
        created_at: now,
        expires_at: now + timeout as i64 * 1000,
        ended_at: None,
        end_reason: None,
        usage: None,
    };
    st.sandboxes
        .create(
            &caller.store,
            SandboxLaunch {
                spec,
                files,
                record,
                takes_slot: true,
                masker: secrets.masker.clone(),
                public_ports: req.public_ports,
                volumes,
                restore: from.map(|(_, _, manifest)| manifest),
                resuming: false,
                plain_env: req.env.clone(),
                pause_on_timeout,
                from_checkpoint: None,
                keep_base: None,
            },
        )
        .await
}

/// A create from a snapshot starts as the snapshot's sandbox did: its
/// image, user and writable root (a request naming others is refused, as
/// the files would not fit them), and unless the request says otherwise
/// its tier, limits and working directory.
fn from_snapshot(req: &mut CreateSandbox, shape: &StoredSpec) -> Result<()> {
    if req.image.as_ref().is_some_and(|i| *i != shape.image) {
        return Err(Error::invalid(format!(
            "the snapshot was taken on image {:?}; a sandbox made from it runs that image",
            shape.image
        )));
    }
    req.image = Some(shape.image.clone());
    let user = shape.user.name();
    if req.user.as_deref().is_some_and(|u| u != user) {
        return Err(Error::invalid(format!(
            "the snapshot was taken as user {user:?}; a sandbox made from it runs as that user"
        )));
    }
    req.user = Some(user.to_string());
    req.writable_root |= shape.writable_root;
    if req.isolation.is_none() {
        req.isolation = Some(shape.isolation.name().to_string());
    }
    if req.limits.is_none() {
        req.limits = Some(shape.limits.clone());
    }
    if req.workdir.is_none() {
        req.workdir = Some(shape.workdir.clone());
    }
    Ok(())
}

/// Moves a live sandbox's expiry (recorded, enforced, audited as `action`).
pub async fn set_expiry(
    st: &Shared,
    caller: &Caller,
    live: &Live,
    expires: warden_store::Millis,
    action: Action,
    outcome: &str,
) -> Result<()> {
    if !caller.store.set_sandbox_expiry(&live.id, expires).await? {
        return Err(Error::conflict("the sandbox has just ended"));
    }
    st.sandboxes.extend(live, expires);
    crate::service::audit::append(
        st.meta.as_ref(),
        caller.store.tenant_id(),
        Audit {
            actor: caller.actor(),
            action,
            target: live.id.as_str(),
            outcome,
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitsConfig;

    fn caps() -> LimitsConfig {
        LimitsConfig {
            max_cpus: 2,
            max_pids: 1000,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn limits_are_checked_against_the_operators_caps_and_set_on_the_spec() {
        let mut spec = SandboxSpec::default();
        let asked = SandboxLimits {
            memory_mb: Some(64),
            cpus: Some(1.5),
            pids: Some(100),
            disk_mb: None,
        };
        let kept = limits_spec(&asked, &mut spec, &caps()).expect("within the caps");
        assert_eq!(spec.limits.memory_bytes, Some(64 << 20));
        assert_eq!(spec.limits.cpu_millicores, Some(1500));
        assert_eq!(spec.limits.pids, Some(100));
        assert_eq!(
            (kept.disk_mb, spec.limits.disk_bytes),
            (Some(256), 256 << 20)
        );
        for (limits, words) in [
            (
                SandboxLimits {
                    cpus: Some(3.0),
                    ..asked.clone()
                },
                "max_cpus",
            ),
            (
                SandboxLimits {
                    pids: Some(1001),
                    ..asked.clone()
                },
                "max_pids",
            ),
            (
                SandboxLimits {
                    memory_mb: Some(8),
                    ..asked.clone()
                },
                "memory_mb",
            ),
            (
                SandboxLimits {
                    pids: Some(4),
                    ..asked.clone()
                },
                "at least 8",
            ),
            (
                SandboxLimits {
                    cpus: Some(f64::NAN),
                    ..asked.clone()
                },
                "at least 0.01",
            ),
        ] {
            match limits_spec(&limits, &mut SandboxSpec::default(), &caps()) {
                Err(Error::Invalid(m)) => assert!(m.contains(words), "{m}"),
                Err(e) => panic!("{words}: {e:?}"),
                Ok(_) => panic!("{words}: accepted"),
            }
        }
    }

    #[test]
    fn labels_are_bounded_in_number_and_shape() {
        let ok: BTreeMap<String, String> = [
            ("team".into(), "data".into()),
            ("a/b.c-d_e".into(), String::new()),
        ]
        .into();
        assert!(check_labels(&ok).is_ok());
        let many: BTreeMap<String, String> = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), "v".into()))
            .collect();
        for (labels, words) in [
            (many, "at most 32 labels"),
            ([("".into(), "v".into())].into(), "1-63 characters"),
            ([("sp ace".into(), "v".into())].into(), "1-63 characters"),
            ([("k".into(), "x".repeat(257))].into(), "up to 256"),
            ([("k".into(), "a\nb".into())].into(), "printable"),
        ] {
            match check_labels(&labels) {
                Err(Error::Invalid(m)) => assert!(m.contains(words), "{m}"),
                other => panic!("{words}: {other:?}"),
            }
        }
    }
}

//! Warden sandbox records as E2B sees them, and the lookups every handler
//! shares (a sandbox that is not the caller's, or has ended, is "not
//! found", as E2B says of killed sandboxes).

use super::error::{E2bError, E2bResult};
use super::models::{CreatedSandbox, Detail, Lifecycle, Listed, NetworkInfo};
use crate::api::{time, StoredSpec};
use crate::auth::Caller;
use crate::manager::Live;
use crate::state::Shared;
use std::sync::Arc;
use warden_store::{SandboxRecord, SandboxState};

/// `/output`, `/scratch` and `/tmp`: each a tmpfs of the sandbox's disk
/// size, so E2B's one disk figure is their sum.
pub const WRITABLE_FILESYSTEMS: u64 = 3;

/// E2B's `base` template (and no template at all) is Warden's `host`
/// image; any other template name is a built Warden image.
pub fn image_for(template: &str) -> &str {
    match template.trim() {
        "" | "base" | "host" => "host",
        t if crate::code::is_template(t) => crate::code::IMAGE,
        t => t,
    }
}

pub fn template_of(image: &str) -> String {
    if image == "host" {
        "base".into()
    } else {
        image.into()
    }
}

pub fn spec(r: &SandboxRecord) -> StoredSpec {
    StoredSpec::of(&r.spec)
}

/// E2B counts whole CPUs; a fraction of one is still one.
pub fn cpu_count(spec: &StoredSpec) -> u64 {
    spec.limits.cpus.unwrap_or(1.0).ceil().max(1.0) as u64
}

pub fn listed(r: &SandboxRecord) -> Listed {
    let spec = spec(r);
    let template = template_of(&spec.image);
    Listed {
        alias: template.clone(),
        template_id: template,
        sandbox_id: r.id.to_string(),
        client_id: r.owner.clone(),
        started_at: time(r.created_at),
        end_at: time(r.expires_at),
        cpu_count: cpu_count(&spec),
        memory_mb: spec.limits.memory_mb.unwrap_or(r.memory_bytes >> 20),
        disk_size_mb: spec.limits.disk_mb.unwrap_or(0) * WRITABLE_FILESYSTEMS,
        metadata: r.labels.clone(),
        state: if r.state == SandboxState::Paused {
            "paused"
        } else {
            "running"
        },
        envd_version: crate::e2b::ENVD_VERSION,
    }
}

/// The domain the SDKs build sandbox host names from
/// (`<port>-<id>.<domain>`): `[e2b] domain`, else the host this request
/// reached the server by, so that `get_host` names this server and never
/// E2B's own domain (the SDKs' fallback when none is given).
pub fn domain(st: &Shared, headers: &axum::http::HeaderMap) -> Option<String> {
    if let Some(d) = &st.cfg.e2b.domain {
        return Some(d.clone());
    }
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    (!host.is_empty() && host.chars().all(plain)).then(|| host.to_string())
}

pub fn detail(st: &Shared, r: &SandboxRecord, domain: Option<String>) -> Detail {
    let spec = spec(r);
    let rules = match spec.network.mode.as_str() {
        "allowlist" => Some(spec.network.rules.iter().map(|r| r.host.clone()).collect()),
        _ => None,
    };
    Detail {
        listed: listed(r),
        envd_access_token: crate::e2b::token::access_token(&st.signing_key, &r.id),
        domain,
        // No network at all is what E2B calls internet access disabled;
        // an allowlist is neither on nor off, which E2B spells null.
        allow_internet_access: rules.is_none().then_some(false),
        network: NetworkInfo {
            allow_out: rules.unwrap_or_default(),
            deny_out: vec!["0.0.0.0/0".into()],
        },
        lifecycle: Lifecycle {
            auto_resume: spec.auto_resume,
            on_timeout: if spec.pause_on_timeout {
                "pause"
            } else {
                "kill"
            },
        },
    }
}

/// What create and connect answer.
pub fn created(st: &Shared, r: &SandboxRecord, domain: Option<String>) -> CreatedSandbox {
    let template = template_of(&spec(r).image);
    CreatedSandbox {
        alias: template.clone(),
        template_id: template,
        sandbox_id: r.id.to_string(),
        client_id: r.owner.clone(),
        envd_version: crate::e2b::ENVD_VERSION,
        envd_access_token: crate::e2b::token::access_token(&st.signing_key, &r.id),
        // Only a sandbox whose ports are not public has one to give.
        traffic_access_token: st
            .sandboxes
            .get_unscoped(&r.id)
            .filter(|l| !l.public_ports)
            .map(|_| crate::e2b::token::traffic_token(&st.signing_key, &r.id)),
        domain,
    }
}

fn unknown(id: &str) -> E2bError {
    E2bError::not_found(format!("sandbox {id:?} not found"))
}

/// 404 for a sandbox that has ended: E2B knows no ended sandboxes.
pub fn ended(id: &str, r: &SandboxRecord) -> E2bError {
    E2bError::not_found(format!(
        "sandbox {id:?} is not running (it {}: {})",
        match r.state {
            SandboxState::TimedOut => "timed out",
            SandboxState::Lost => "was lost in a server restart",
            SandboxState::Failed => "failed",
            _ => "was killed",
        },
        r.end_reason.as_deref().unwrap_or("ended")
    ))
}

/// Any sandbox of the caller's, running or ended.
pub async fn record(caller: &Caller, id: &str) -> E2bResult<SandboxRecord> {
    let sid = warden_store::SandboxId::parse(id).ok_or_else(|| unknown(id))?;
    caller
        .store
        .get_sandbox(&sid)
        .await?
        .ok_or_else(|| unknown(id))
}

/// A running sandbox of the caller's.
pub async fn running(st: &Shared, caller: &Caller, id: &str) -> E2bResult<SandboxRecord> {
    let r = record(caller, id).await?;
    if r.state != SandboxState::Running {
        return Err(ended(id, &r));
    }
    // The SDK already sees one being torn down as not running.
    if tearing_down(st, caller, &r) {
        return Err(E2bError::not_found(format!(
            "sandbox {id:?} is not running (it is being stopped)"
        )));
    }
    Ok(r)
}

/// Whether `r` is recorded running on this server but is no longer live
/// here: it is being torn down (the record changes when teardown ends),
/// or is not live yet (the record is written just before).
pub fn tearing_down(st: &Shared, caller: &Caller, r: &SandboxRecord) -> bool {
    let m = &st.sandboxes;
    r.state == SandboxState::Running
        && r.owner == m.owner
        && m.get(caller.store.tenant_id(), &r.id).is_none()
}

/// A sandbox of the caller's that runs on this server.
pub async fn live(st: &Shared, caller: &Caller, id: &str) -> E2bResult<Arc<Live>> {
    match crate::service::sandboxes::live(st, caller, id).await {
        Ok(l) => Ok(l),
        Err(crate::service::Error::Conflict(_)) => Err(ended(id, &record(caller, id).await?)),
        Err(crate::service::Error::NotFound(_)) => Err(unknown(id)),
        Err(e) => Err(e.into()),
    }
}

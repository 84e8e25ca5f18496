//! Sandbox lifecycle: create, list, get, delete, extend.

use crate::api::{self, CreateSandbox, Page, SandboxLimits, SetTimeout, StoredSpec};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::manager::{Live, NewSandbox};
use crate::state::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use warden_spec::SandboxSpec;
use warden_store::{
    now_ms, FileId, FileMeta, SandboxFilter, SandboxId, SandboxRecord, SandboxState, TenantStore,
};

pub const MAX_TIMEOUT_SECS: u64 = 86_400;
const MAX_LABELS: usize = 32;

pub fn sandbox_id(id: &str) -> ApiResult<SandboxId> {
    SandboxId::parse(id).ok_or_else(|| ApiError::not_found("sandbox"))
}

/// The live sandbox `id` of the caller's tenant, or 404 (also for another
/// tenant's id, and 409 for one of its own that has ended).
pub async fn live(st: &Shared, caller: &Caller, id: &str) -> ApiResult<Arc<Live>> {
    let id = sandbox_id(id)?;
    if let Some(l) = st.sandboxes.get(caller.store.tenant_id(), &id) {
        return Ok(l);
    }
    match caller.store.get_sandbox(&id).await? {
        Some(r) => Err(ApiError::conflict(format!(
            "the sandbox is {} ({})",
            r.state.as_str(),
            r.end_reason.unwrap_or_default()
        ))),
        None => Err(ApiError::not_found("sandbox")),
    }
}

/// The tenant's files a request names for `/input`: each must exist (an
/// id of another tenant is "not found"), and their names must be distinct.
pub async fn input_files(store: &TenantStore, raw_ids: &[String]) -> ApiResult<Vec<FileMeta>> {
    let mut files = Vec::new();
    let mut names = HashSet::new();
    for raw in raw_ids {
        let not_found = || ApiError::not_found(&format!("file {raw:?}"));
        let id = FileId::parse(raw).ok_or_else(not_found)?;
        let f = store.get_file(&id).await?.ok_or_else(not_found)?;
        if !names.insert(f.name.clone()) {
            return Err(ApiError::bad_request(format!(
                "two files are named {:?}; /input needs distinct names",
                f.name
            )));
        }
        files.push(f);
    }
    Ok(files)
}

pub fn check_labels(labels: &BTreeMap<String, String>) -> ApiResult<()> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_LABELS} labels"
        )));
    }
    for (k, v) in labels {
        let key_ok = (1..=63).contains(&k.len())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
        if !key_ok {
            return Err(ApiError::bad_request(format!(
                "label key {k:?}: 1-63 characters of [A-Za-z0-9_.-/]"
            )));
        }
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
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
) -> ApiResult<SandboxLimits> {
    let memory_mb = l.memory_mb.unwrap_or(512);
    let cpus = l.cpus.unwrap_or(1.0);
    let pids = l.pids.unwrap_or(256);
    let disk_mb = l.disk_mb.unwrap_or(256);
    if !(16..=1 << 20).contains(&memory_mb) {
        return Err(ApiError::bad_request(
            "limits.memory_mb must be 16 to 1048576",
        ));
    }
    if !(cpus.is_finite() && cpus >= 0.01) {
        return Err(ApiError::bad_request("limits.cpus must be at least 0.01"));
    }
    if cpus > f64::from(caps.max_cpus) {
        return Err(ApiError::bad_request(format!(
            "limits.cpus: {cpus} is over this server's limit of {} CPUs per sandbox \
             ([limits] max_cpus)",
            caps.max_cpus
        )));
    }
    if pids < 8 {
        return Err(ApiError::bad_request("limits.pids must be at least 8"));
    }
    if pids > caps.max_pids {
        return Err(ApiError::bad_request(format!(
            "limits.pids: {pids} is over this server's limit of {} PIDs per sandbox \
             ([limits] max_pids)",
            caps.max_pids
        )));
    }
    if !(1..=1 << 20).contains(&disk_mb) {
        return Err(ApiError::bad_request("limits.disk_mb must be 1 to 1048576"));
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

#[utoipa::path(post, path = "/v1/sandboxes", tag = "sandboxes", request_body = CreateSandbox,
    responses((status = 201, body = api::Sandbox), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody, description = "`capacity`: this server runs as many sandboxes as it may, or has no file descriptors left for another (the message says which); try again later")))]
pub async fn create(
    caller: Caller,
    State(st): State<Shared>,
    Json(req): Json<CreateSandbox>,
) -> ApiResult<(StatusCode, Json<api::Sandbox>)> {
    let record = create_audited(&caller, &st, req).await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// Creates a sandbox and audits the attempt (both APIs create through
/// here).
pub(crate) async fn create_audited(
    caller: &Caller,
    st: &Shared,
    req: CreateSandbox,
) -> ApiResult<SandboxRecord> {
    if st.draining() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    let result = create_inner(caller, st, req).await;
    let (target, outcome) = match &result {
        Ok(r) => (r.id.to_string(), "ok".to_string()),
        Err(e) => (String::new(), e.code.to_string()),
    };
    st.audit(
        caller.store.tenant_id(),
        caller.actor(),
        "sandbox.create",
        &target,
        &outcome,
    )
    .await?;
    result
}

async fn create_inner(
    caller: &Caller,
    st: &Shared,
    req: CreateSandbox,
) -> ApiResult<SandboxRecord> {
    let image = req.image.unwrap_or_else(|| "host".into());
    let (image_spec, _) = crate::images::resolve(&st.cfg.images_dir, &image)?;
    let isolation = api::parse_isolation(req.isolation.as_deref())?;
    let mut spec = SandboxSpec {
        image: image_spec,
        isolation,
        ..SandboxSpec::default()
    };
    let timeout = req.timeout_secs.unwrap_or(300);
    if !(1..=MAX_TIMEOUT_SECS).contains(&timeout) {
        return Err(ApiError::bad_request(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    // The server enforces the lifetime itself (expires_at).
    spec.limits.timeout = Some(Duration::from_secs(timeout));
    let limits = limits_spec(&req.limits.unwrap_or_default(), &mut spec, &st.cfg.limits)?;
    if let Some(w) = &req.workdir {
        spec.workdir = w.clone();
    }
    spec.env = req
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    check_labels(&req.labels)?;
    spec.network = req.network.clone().unwrap_or_default().to_mode()?;
    spec.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
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
    };
    let record = SandboxRecord {
        id: SandboxId::generate(),
        tenant_id: caller.store.tenant_id().clone(),
        state: SandboxState::Running,
        spec: serde_json::to_value(&stored).map_err(|e| ApiError::internal("encoding", e))?,
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
            NewSandbox {
                spec,
                files,
                record,
                takes_slot: true,
                masker: secrets.masker.clone(),
            },
        )
        .await
}

#[utoipa::path(get, path = "/v1/sandboxes", tag = "sandboxes",
    params(("state" = Option<String>, Query, description = "running | stopped | timed_out | lost | failed"),
           ("label" = Option<String>, Query, description = "k=v, repeatable; all must match"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<api::Sandbox>), (status = 400, body = ErrorBody)))]
pub async fn list(caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Json<Page<api::Sandbox>>> {
    let mut filter = SandboxFilter::default();
    let mut cursor = None;
    let mut limit = 100u32;
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match &*k {
            "state" => {
                filter.state = Some(
                    SandboxState::parse(&v)
                        .ok_or_else(|| ApiError::bad_request(format!("unknown state {v:?}")))?,
                )
            }
            "label" => {
                let (lk, lv) = v
                    .split_once('=')
                    .ok_or_else(|| ApiError::bad_request("label filters are label=k=v"))?;
                filter.labels.insert(lk.into(), lv.into());
            }
            "cursor" => cursor = Some(v.into_owned()),
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .map_err(|_| ApiError::bad_request("limit must be a number"))?
                    .clamp(1, 1000)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    let page = caller
        .store
        .list_sandboxes(&filter, cursor.as_deref(), limit)
        .await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    responses((status = 200, body = api::Sandbox), (status = 404, body = ErrorBody)))]
pub async fn get(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<api::Sandbox>> {
    let r = caller
        .store
        .get_sandbox(&sandbox_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    Ok(Json(r.into()))
}

#[utoipa::path(delete, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = sandbox_id(&id)?;
    let tenant = caller.store.tenant_id();
    if st
        .sandboxes
        .destroy(
            tenant,
            &id,
            SandboxState::Stopped,
            "deleted",
            caller.actor(),
        )
        .await
        .is_some()
    {
        return Ok(StatusCode::NO_CONTENT);
    }
    // Already ended: deleting is idempotent; unknown (or not ours): 404.
    match caller.store.get_sandbox(&id).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found("sandbox")),
    }
}

#[utoipa::path(post, path = "/v1/sandboxes/{id}/timeout", tag = "sandboxes", request_body = SetTimeout,
    responses((status = 200, body = api::Sandbox), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_timeout(
    caller: Caller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    Json(req): Json<SetTimeout>,
) -> ApiResult<Json<api::Sandbox>> {
    if !(1..=MAX_TIMEOUT_SECS).contains(&req.timeout_secs) {
        return Err(ApiError::bad_request(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    let live = live(&st, &caller, &id).await?;
    let expires = now_ms() + req.timeout_secs as i64 * 1000;
    set_expiry(
        &st,
        &caller,
        &live,
        expires,
        "sandbox.timeout_set",
        &format!("ok ({}s)", req.timeout_secs),
    )
    .await?;
    let r = caller
        .store
        .get_sandbox(&live.id)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    Ok(Json(r.into()))
}

/// Moves a live sandbox's expiry (recorded, enforced, audited as `action`).
pub(crate) async fn set_expiry(
    st: &Shared,
    caller: &Caller,
    live: &Live,
    expires: warden_store::Millis,
    action: &str,
    outcome: &str,
) -> ApiResult<()> {
    if !caller.store.set_sandbox_expiry(&live.id, expires).await? {
        return Err(ApiError::conflict("the sandbox has just ended"));
    }
    st.sandboxes.extend(live, expires);
    st.audit(
        caller.store.tenant_id(),
        caller.actor(),
        action,
        live.id.as_str(),
        outcome,
    )
    .await?;
    Ok(())
}

//! Sandbox lifecycle: create, get, kill, timeout, connect, refresh, all
//! through the same services as `/v1` (`service::sandboxes`): the same quotas,
//! limits, validation and audit.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bJson, E2bResult};
use super::models::{
    ConnectSandbox, CreatedSandbox, Detail, NewSandbox, RefreshRequest, TimeoutRequest,
};
use super::view;
use crate::api::{CreateSandbox, SandboxLimits};
use crate::auth::Caller;
use crate::service::audit::{Action, Audit};
use crate::service::sandboxes::{check_labels, create_audited, set_expiry, MAX_TIMEOUT_SECS};
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use warden_store::{now_ms, SandboxState};

/// E2B's default sandbox lifetime, and the SDKs'.
const DEFAULT_TIMEOUT_SECS: i64 = 300;
/// A refresh keeps a sandbox alive this long unless it says otherwise.
const DEFAULT_REFRESH_SECS: i64 = 60;
/// E2B's bound on one refresh.
const MAX_REFRESH_SECS: i64 = 3600;

fn seconds(what: &str, v: i64, max: i64) -> E2bResult<i64> {
    seconds_from(1, what, v, max)
}

fn seconds_from(min: i64, what: &str, v: i64, max: i64) -> E2bResult<i64> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(E2bError::bad_request(format!(
            "{what} must be {min} to {max} seconds, not {v}"
        )))
    }
}

/// Refuses what Warden cannot honour; the rest becomes a native create
/// request.
fn native_request(
    st: &Shared,
    req: NewSandbox,
    snapshot: Option<String>,
    own_image: bool,
) -> E2bResult<CreateSandbox> {
    // `autoPauseMemory` is E2B's default said out loud (its API's default
    // is true): a pause at the timeout keeps what it can, the sandbox's
    // files. `mcp` needs nothing of the server: the SDK starts
    // `mcp-gateway` in the sandbox itself, and says so when the image has
    // none ("Failed to start MCP gateway").
    let iam_tokens = req
        .iam
        .as_ref()
        .and_then(|v| v.get("tokens"))
        .and_then(|t| t.as_object())
        .is_some_and(|t| !t.is_empty());
    if iam_tokens {
        return Err(E2bError::bad_request(
            "iam: workload identity tokens are not supported by Warden",
        ));
    }
    let image = view::image_for(&req.template_id).to_string();
    if snapshot.is_none() && !own_image {
        crate::images::resolve(&st.cfg.images_dir, &image).map_err(|e| {
            E2bError::bad_request(format!(
                "template {:?}: `base` is Warden's host image, any other template must be a \
                 built Warden image or one of the team's snapshots: {}",
                req.template_id, e
            ))
        })?;
    }
    let timeout = seconds(
        "timeout",
        req.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
        MAX_TIMEOUT_SECS as i64,
    )?;
    let labels = req.metadata.unwrap_or_default();
    check_labels(&labels).map_err(|e| E2bError::bad_request(format!("metadata: {e}")))?;
    let network = super::network::for_create(st, req.allow_internet_access, req.network.as_ref())?;
    // E2B serves a sandbox's ports publicly unless asked not to.
    let public_ports = req
        .network
        .as_ref()
        .and_then(|n| n.allow_public_traffic)
        .unwrap_or(true);
    let from_snapshot = snapshot.is_some();
    // The interpreter's default kernels (Python and Deno's) take about
    // 300 MB before any code runs: its sandboxes get the room for more.
    let limits = crate::code::is_template(req.template_id.trim()).then(|| SandboxLimits {
        memory_mb: Some(crate::code::MEMORY_MB),
        ..SandboxLimits::default()
    });
    Ok(CreateSandbox {
        public_ports,
        limits,
        // A snapshot brings its own image and user.
        image: (!from_snapshot).then_some(image),
        snapshot,
        timeout_secs: Some(timeout as u64),
        env: req.env_vars.unwrap_or_default(),
        labels,
        network: Some(network),
        // E2B's layout: the `user` account, its home /home/user as the
        // working directory, and a root the sandbox may write to.
        user: (!from_snapshot).then(|| warden_spec::SandboxUser::User.name().into()),
        writable_root: true,
        // A snapshot brings its own tier too.
        isolation: (!from_snapshot).then(|| st.cfg.e2b.isolation.clone()),
        volumes: super::volumes::mounts(req.volume_mounts),
        on_timeout: (req.auto_pause == Some(true)).then(|| "pause".into()),
        auto_resume: req.auto_resume.as_ref().is_some_and(|a| a.enabled),
        ..CreateSandbox::default()
    })
}

/// `POST /sandboxes`, `POST /v2/sandboxes`.
pub async fn create(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    headers: HeaderMap,
    E2bJson(req): E2bJson<NewSandbox>,
) -> E2bResult<(StatusCode, Json<CreatedSandbox>)> {
    let interpreter = crate::code::is_template(req.template_id.trim());
    let snapshot = super::snapshots::named(&caller.store, &req.template_id).await?;
    // A template may name one of the team's built images.
    let own_image = crate::images::valid_name(view::image_for(&req.template_id))
        && matches!(
            caller
                .store
                .get_image(view::image_for(&req.template_id))
                .await,
            Ok(Some(_))
        );
    let native = match native_request(&st, req, snapshot, own_image) {
        Ok(n) => n,
        Err(e) => {
            // Refused before the native path: audited like its refusals.
            st.audit(
                caller.store.tenant_id(),
                Audit {
                    actor: caller.actor(),
                    action: Action::SandboxCreate,
                    target: "",
                    outcome: e.code,
                },
            )
            .await?;
            return Err(e);
        }
    };
    let record = create_audited(&caller, &st, native).await?;
    if interpreter {
        start_interpreter(&caller, &st, &record).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(view::created(&st, &record, view::domain(&st, &headers))),
    ))
}

/// The code interpreter template's sandbox answers once its interpreter
/// listens, so the SDK's first `run_code` finds it; a sandbox whose
/// interpreter cannot start is destroyed again, and the create fails.
async fn start_interpreter(
    caller: &Caller,
    st: &Shared,
    record: &warden_store::SandboxRecord,
) -> E2bResult<()> {
    let tenant = caller.store.tenant_id();
    let Some(live) = st.sandboxes.get(tenant, &record.id) else {
        return Err(E2bError::not_found(format!(
            "sandbox {} ended while its code interpreter was starting",
            record.id
        )));
    };
    let started = crate::code::ensure(&live).await;
    drop(live);
    if let Err(e) = started {
        st.sandboxes
            .destroy(
                tenant,
                &record.id,
                SandboxState::Failed,
                "the code interpreter did not start",
                caller.actor(),
            )
            .await;
        return Err(e.into());
    }
    Ok(())
}

/// `GET /sandboxes/{id}`.
pub async fn get(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> E2bResult<Json<Detail>> {
    let r = settled(&st, &caller, &id).await?;
    let r = if r.state == SandboxState::Paused {
        r
    } else {
        view::running(&st, &caller, &id).await?
    };
    Ok(Json(view::detail(&st, &r, view::domain(&st, &headers))))
}

/// The caller's sandbox `id` once any teardown of it on this server has
/// ended: a sandbox being paused is answered as paused (what it will be
/// in a moment), not as gone, to an SDK polling for it.
async fn settled(
    st: &Shared,
    caller: &crate::auth::Caller,
    id: &str,
) -> E2bResult<warden_store::SandboxRecord> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = view::record(caller, id).await?;
        if !view::tearing_down(st, caller, &r) || std::time::Instant::now() > deadline {
            return Ok(r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `DELETE /sandboxes/{id}`: 204, or 404 when there is nothing running
/// to kill (which the SDKs' `kill` reports as false).
pub async fn kill(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> E2bResult<StatusCode> {
    let r = view::record(&caller, &id).await?;
    if crate::service::pause::delete_paused(&st, &caller, &r).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    let r = view::running(&st, &caller, &id).await?;
    let destroyed = st
        .sandboxes
        .destroy(
            caller.store.tenant_id(),
            &r.id,
            SandboxState::Stopped,
            "deleted",
            caller.actor(),
        )
        .await;
    match destroyed {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        // Ended between the lookup and now (its timeout, another kill).
        None => Err(E2bError::not_found(format!(
            "sandbox {id:?} is not running"
        ))),
    }
}

/// `POST /sandboxes/{id}/timeout`: the sandbox now ends `timeout` seconds
/// from now (sooner or later than before); `0` (E2B's minimum) ends it
/// now, as its timeout would (killed, or paused per its lifecycle).
pub async fn timeout(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    E2bJson(req): E2bJson<TimeoutRequest>,
) -> E2bResult<StatusCode> {
    let secs = seconds_from(0, "timeout", req.timeout, MAX_TIMEOUT_SECS as i64)?;
    let live = view::live(&st, &caller, &id).await?;
    let expires = now_ms() + secs * 1000;
    set_expiry(
        &st,
        &caller,
        &live,
        expires,
        Action::SandboxTimeoutSet,
        &format!("ok ({secs}s)"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Keeps a live sandbox alive at least `secs` from now (never shortens
/// it), audited as `action`.
async fn keep_alive(
    st: &Shared,
    caller: &Caller,
    id: &str,
    secs: i64,
    action: Action,
) -> E2bResult<warden_store::SandboxRecord> {
    let live = view::live(st, caller, id).await?;
    let wanted = now_ms() + secs * 1000;
    if wanted > live.expires_at() {
        set_expiry(st, caller, &live, wanted, action, &format!("ok ({secs}s)")).await?;
    } else {
        st.audit(
            caller.store.tenant_id(),
            Audit {
                actor: caller.actor(),
                action,
                target: live.id.as_str(),
                outcome: "ok (expiry unchanged)",
            },
        )
        .await?;
    }
    view::running(st, caller, id).await
}

/// `POST /sandboxes/{id}/connect`, `POST /v2/sandboxes/{id}/connect`: a
/// running sandbox answers 200 with its access token, its timeout
/// extended (never shortened) to `timeout`; a paused one is resumed (its
/// files back, under the same id) and answers 201.
pub async fn connect(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    E2bJson(req): E2bJson<ConnectSandbox>,
) -> E2bResult<(StatusCode, Json<CreatedSandbox>)> {
    let secs = seconds(
        "timeout",
        req.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
        MAX_TIMEOUT_SECS as i64,
    )?;
    if let Some(r) = super::pause::resume_if_paused(&st, &caller, &id, Some(secs)).await? {
        return Ok((
            StatusCode::CREATED,
            Json(view::created(&st, &r, view::domain(&st, &headers))),
        ));
    }
    let r = keep_alive(&st, &caller, &id, secs, Action::SandboxConnect).await?;
    Ok((
        StatusCode::OK,
        Json(view::created(&st, &r, view::domain(&st, &headers))),
    ))
}

/// `POST /sandboxes/{id}/refreshes`: keeps the sandbox alive at least
/// `duration` seconds (default 60, at most 3600).
pub async fn refresh(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> E2bResult<StatusCode> {
    // The body is optional here.
    let req: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| E2bError::bad_request(e.to_string()))?
    };
    let secs = seconds(
        "duration",
        req.duration.unwrap_or(DEFAULT_REFRESH_SECS),
        MAX_REFRESH_SECS,
    )?;
    keep_alive(&st, &caller, &id, secs, Action::SandboxRefresh).await?;
    Ok(StatusCode::NO_CONTENT)
}

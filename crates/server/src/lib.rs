//! `warden serve`: the multi-tenant HTTP API over the runtime.
//!
//! API (axum handlers in `routes`) -> service (`manager`, the store's
//! `TenantStore`) -> runtime. Handlers never hold another tenant's store:
//! the only way to get one is the [`auth::Caller`] extractor.

pub mod api;
pub mod api_images;
mod api_network;
pub mod api_reviews;
pub mod api_schedules;
pub mod api_snapshots;
pub mod api_volumes;
pub mod auth;
pub mod budget;
mod checks;
mod code;
mod command_policy;
pub mod config;
mod console;
pub mod e2b;
pub mod egress;
mod error;
mod hostcmd;
mod images;
pub mod jobs;
mod listen;
pub mod manager;
pub mod mcp;
mod metrics;
mod netguard;
mod openapi;
mod proxy;
mod routes;
mod secrets;
pub mod service;
mod signed;
pub mod snapshots;
mod sniff;
pub mod state;
mod tiers;
mod webhooks;

use anyhow::{Context, Result};
use axum::routing::get;
use axum::Router;
use config::Config;
use sha2::{Digest, Sha256};
use state::{AppState, Shared};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use warden_store::{MetaStore, Objects, SandboxState};

pub fn router(state: Shared) -> Router {
    use routes::*;
    let (v1, _) = table::v1(state.cfg.max_json_bytes).split_for_parts();
    let native = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .merge(console::routes())
        .merge(v1)
        .layer(axum::middleware::from_fn(error::json_errors));
    // The MCP tools call `/v1` through this router as it stands here,
    // without `/mcp` itself (see `mcp::v1`).
    let native = native.clone().merge(
        mcp::http_service(state.clone(), native.with_state(state.clone()))
            .layer(axum::middleware::from_fn(error::json_errors)),
    );
    // E2B's control API answers in its own error shape, so it sits beside
    // the native routes, not under `json_errors`; requests addressed to a
    // sandbox's envd are diverted before any of them.
    // What envd keeps per sandbox is the front door's own, dropped as each
    // sandbox ends.
    // A sandbox whose timeout pauses it is paused by the service layer,
    // which the manager's expiry loop does not know (held weakly: the
    // state holds the manager).
    state.sandboxes.on_timeout_pause({
        let st = Arc::downgrade(&state);
        Arc::new(
            move |tenant: warden_store::TenantId, id: warden_store::SandboxId| {
                let st = st.clone();
                futures::FutureExt::boxed(async move {
                    match st.upgrade() {
                        Some(st) => service::pause::pause_on_timeout(&st, tenant, id).await,
                        None => false,
                    }
                })
            },
        )
    });
    // The snapshot a resumed sandbox kept as its base goes when it ends.
    state.sandboxes.on_base_end({
        let st = Arc::downgrade(&state);
        Arc::new(
            move |tenant: warden_store::TenantId, id: warden_store::SnapshotId| {
                let st = st.clone();
                futures::FutureExt::boxed(async move {
                    if let Some(st) = st.upgrade() {
                        service::snapshots::drop_base(st, tenant, id).await;
                    }
                })
            },
        )
    });
    let kept = Arc::new(e2b::envd::EnvdSandboxes::default());
    state.sandboxes.on_end({
        let kept = kept.clone();
        Box::new(move |id| kept.forget(id))
    });
    let envd = e2b::envd::routes().with_state(e2b::envd::EnvdApp {
        app: state.clone(),
        sandboxes: kept,
    });
    let diverted = e2b::Diverted {
        envd,
        app: state.clone(),
    };
    // `native` last: of two default fallbacks a merge keeps the second,
    // and only native's (under `json_errors`) answers an unknown route in
    // the API's error shape.
    e2b::control::routes()
        .merge(native)
        .layer(axum::middleware::from_fn_with_state(diverted, e2b::divert))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The admin token's hash: from the configuration, else the one generated
/// at first start (printed once, only its hash kept).
async fn admin_hash(cfg: &Config, meta: &dyn MetaStore) -> Result<[u8; 32]> {
    if let Some(t) = &cfg.admin_token {
        return Ok(Sha256::digest(t.as_bytes()).into());
    }
    if let Some(h) = meta.get_setting("admin_token_sha256").await? {
        let bytes = hex::decode(&h).context("stored admin token hash")?;
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("stored admin token hash has the wrong length"));
    }
    let token = format!("wa_{}", auth::new_secret());
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    meta.set_setting("admin_token_sha256", &hex::encode(hash))
        .await?;
    eprintln!(
        "warden: generated an admin token (shown only this once; set WARDEN_ADMIN_TOKEN to choose your own):\n  {token}"
    );
    Ok(hash)
}

async fn signing_key(cfg: &Config, meta: &dyn MetaStore) -> Result<Vec<u8>> {
    if let Some(k) = &cfg.signing_key {
        return Ok(k.as_bytes().to_vec());
    }
    if let Some(k) = meta.get_setting("signing_key").await? {
        return hex::decode(k).context("stored signing key");
    }
    let key: [u8; 32] = rand::random();
    meta.set_setting("signing_key", &hex::encode(key)).await?;
    Ok(key.to_vec())
}

/// Opens the store and the runtime, reaps what a dead predecessor left, and
/// serves until `stop` completes (for `warden serve`: [`wait_for_signal`]);
/// then stops taking work, destroys its sandboxes and returns. `on_listen`
/// is told the bound address and the effective configuration (which
/// `warden serve` prints; a benchmark's server keeps quiet).
pub async fn serve(
    mut cfg: Config,
    default_init: PathBuf,
    on_listen: impl FnOnce(SocketAddr, &Config),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    raise_fd_limit()?;
    // Root's alone when we make it: it holds the database and every
    // tenant's files. (An existing directory keeps the operator's mode;
    // sandboxes work whatever it is, see the runtime's `handles.rs`.)
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&cfg.data_dir)
        .with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    cfg.data_dir = cfg.data_dir.canonicalize()?;
    let objects =
        Objects::local(&cfg.data_dir.join("objects")).context("opening the object store")?;
    let audit_key = warden_store::audit::AuditKey::load_or_create(&cfg.audit_key_file())?;
    let anchors = warden_store::anchor::Anchors::new(&objects, audit_key);
    let db = Arc::new(
        warden_store::sqlite::open(&cfg.data_dir.join("warden.db"))
            .await
            .context("opening the database")?
            .with_audit(anchors.clone()),
    );
    let meta: Arc<dyn MetaStore> = db.clone();
    let jobs: Arc<dyn warden_store::JobStore> = db;
    // Chains from before audit keys: anchored once, as they are now.
    let adopted = anchors
        .adopt_unkeyed(meta.as_ref())
        .await
        .context("anchoring the audit chains")?;
    if adopted > 0 {
        tracing::warn!("{adopted} unkeyed audit chain(s) anchored at their current head");
    }
    for dir in ["logs", "work"] {
        let d = cfg.data_dir.join(dir);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    // Half-finished exports of a previous process: their jobs run again.
    if let Ok(entries) = std::fs::read_dir(cfg.data_dir.join("work")) {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    // Memory pauses a killed predecessor (or a failing store) left with a
    // complete checkpoint but no record: recorded, their sandboxes paused
    // (before unfinished snapshots are deleted and running sandboxes
    // reaped as lost).
    let recovered = service::pause_memory::recover(meta.clone(), &objects, &cfg.data_dir)
        .await
        .context("recording memory pauses cut short")?;
    if recovered > 0 {
        tracing::warn!(
            "{recovered} memory pause(s) cut short after their checkpoint were recorded"
        );
    }
    // Snapshots a killed predecessor was taking: deleted, with the blobs
    // only they held (before the object sweep, which then finds nothing
    // of theirs).
    service::snapshots::sweep(meta.clone(), &objects)
        .await
        .context("deleting unfinished snapshots")?;
    // Image roots a killed predecessor was making or had retired.
    service::images::sweep(&cfg.data_dir).await;
    // Checkpoints of memory pauses a killed predecessor did not finish.
    let checkpoints = service::pause_memory::sweep(meta.as_ref(), &cfg.data_dir)
        .await
        .context("matching checkpoints to their pauses")?;
    if checkpoints > 0 {
        tracing::warn!("{checkpoints} unfinished checkpoint(s) of a previous process deleted");
    }
    // What a killed predecessor left in the object store (half-written
    // uploads and exports, objects whose row was never recorded, storage
    // reservations): outside every quota, and nothing else removes them.
    let swept = warden_store::sweep::sweep(meta.as_ref(), &objects, warden_store::now_ms())
        .await
        .context("sweeping the object store")?;
    if swept != Default::default() {
        tracing::warn!(
            reservations = swept.reservations,
            orphans = swept.orphans,
            partials = swept.partials,
            "removed what a previous server process left in the object store"
        );
    }
    let volumes = Arc::new(
        warden_runtime::volume::Volumes::open(&cfg.data_dir.join("volumes"))
            .context("opening the volume store")?,
    );
    service::volumes::sweep(meta.as_ref(), &volumes)
        .await
        .context("matching volumes to their records")?;
    let admin_hash = admin_hash(&cfg, meta.as_ref()).await?;
    let signing_key = signing_key(&cfg, meta.as_ref()).await?;
    let vault = match &cfg.secrets.key {
        Some(k) => Some(secrets::Vault::new(
            &*secrets::parse_key(k).map_err(|e| anyhow::anyhow!("the secrets key: {e}"))?,
        )),
        None => None,
    };
    let runtime = tiers::open(&cfg.runtime, default_init).await?;
    let work_dir = cfg.data_dir.join("sandboxes");
    std::fs::create_dir_all(&work_dir)?;
    let egress = egress::EgressHub::start(meta.clone(), cfg.egress.overrides()?);
    let manager = Arc::new(
        manager::Manager::new(runtime.clone(), meta.clone(), work_dir, egress)
            .with_capacity(cfg.server.max_sandboxes),
    );
    let lost = manager.reap_predecessors().await?;
    if lost > 0 {
        tracing::warn!("{lost} sandbox(es) of a previous server process were marked lost");
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if cfg.public_url.is_none() {
        cfg.listen = addr;
    }
    tiers::report_in_background(&runtime);
    let buffers = budget::Buffers::new(cfg.server.buffers_total_bytes);
    let state = Arc::new(AppState {
        cfg,
        meta,
        jobs,
        jobs_handle: Default::default(),
        objects,
        admin_hash,
        signing_key,
        vault,
        sandboxes: manager.clone(),
        draining: AtomicBool::new(false),
        buffers,
        volumes,
    });
    tokio::spawn(manager.clone().expire_loop());
    tokio::spawn(jobs::worker_loop(state.clone()));
    tokio::spawn(jobs::schedules::scheduler_loop(state.clone()));
    tokio::spawn(webhooks::delivery_loop(state.clone()));
    let app = router(state.clone());
    on_listen(addr, &state.cfg);
    let drain_state = state.clone();
    let shutdown = async move {
        stop.await;
        eprintln!("warden: shutting down: destroying sandboxes");
        drain_state.draining.store(true, Ordering::Relaxed);
        drain_state
            .sandboxes
            .destroy_all(SandboxState::Stopped, "server shutdown")
            .await;
        // Jobs whose sandboxes just went away put themselves back in the
        // queue (a failure of Warden's own); let them record that.
        jobs::wait_idle(&drain_state, Duration::from_secs(5)).await;
    };
    let server_cfg = state.cfg.server.clone();
    let server = listen::serve(listener, app, &server_cfg, shutdown);
    tokio::pin!(server);
    // In-flight requests get a bounded time to finish once draining began.
    tokio::select! {
        () = &mut server => {},
        _ = async {
            while !state.draining() { tokio::time::sleep(Duration::from_millis(100)).await; }
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => tracing::warn!("requests still open 10 s after shutdown began; exiting anyway"),
    }
    eprintln!("warden: stopped");
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: every sandbox
/// holds a few descriptors here (control socket, pidfd, slot lock), and the
/// usual soft limit of 1024 ran out at ~330 sandboxes. A hard limit below
/// what a sandbox needs is raised to it (root may), or start-up stops with
/// the reason: otherwise every sandbox would fail to start.
fn raise_fd_limit() -> Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // What each sandbox's processes may open, set with soft = hard inside:
    // raising a hard limit takes the host's CAP_SYS_RESOURCE, which a
    // sandbox has not, so it cannot start under a lower inherited one.
    let sandbox_nofile = warden_spec::Limits::default().nofile;
    let lim = getrlimit(Resource::Nofile);
    let (Some(soft), Some(hard)) = (lim.current, lim.maximum) else {
        return Ok(()); // unlimited
    };
    if hard < sandbox_nofile {
        let wanted = Rlimit {
            current: Some(sandbox_nofile),
            maximum: Some(sandbox_nofile),
        };
        setrlimit(Resource::Nofile, wanted).map_err(|e| {
            anyhow::anyhow!(
                "the hard limit on open files is {hard}, below the {sandbox_nofile} each \
                 sandbox's processes get, and raising it failed ({e}); raise it (systemd: \
                 LimitNOFILE=, a shell: ulimit -Hn) or run warden serve as root"
            )
        })?;
        eprintln!("warden: open files: hard limit raised from {hard} to {sandbox_nofile}, what each sandbox needs");
        return Ok(());
    }
    if soft < hard {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!("open files: soft limit raised from {soft} to {hard}"),
            Err(e) => tracing::warn!("raising the open-files limit: {e}"),
        }
    }
    Ok(())
}

/// SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
}

//! Opening the isolation tiers the server offers, from `[runtime]`.

use crate::config::{GvisorSetting, RuntimeConfig};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use warden_runtime::gvisor::GvisorConfig;
use warden_runtime::native::{NativeConfig, NativeRuntime};
use warden_runtime::tiers::{describe, GvisorMode, Tiers};
use warden_spec::Isolation;

/// Starts the native runtime (the server needs it) and sets up the gVisor
/// tier as configured: `required` checks it now and fails start-up without
/// it; `auto` leaves the check to [`report_in_background`] or the first
/// sandbox that asks for it.
pub async fn open(rc: &RuntimeConfig, default_init: PathBuf) -> Result<Arc<Tiers>> {
    let init_path = rc.init.clone().unwrap_or(default_init);
    let native = NativeConfig {
        init_path: init_path.clone(),
        state_dir: rc.state_dir.clone(),
        cgroup_parent: rc.cgroup_parent.clone(),
        favor_dynmods: rc.favor_dynmods,
        prestart: rc.prestart,
    };
    let gvisor = match rc.gvisor {
        GvisorSetting::Off => GvisorMode::Off("turned off by [runtime] gvisor = \"off\"".into()),
        GvisorSetting::Auto | GvisorSetting::Required => GvisorMode::Auto(GvisorConfig {
            runsc: rc.runsc.clone(),
            init_path,
            state_dir: rc.state_dir.clone(),
            cgroup_parent: rc.cgroup_parent.clone(),
            platform: rc.gvisor_platform.clone(),
            prestart: rc.gvisor_prestart,
        }),
    };
    let required = rc.gvisor == GvisorSetting::Required;
    tokio::task::spawn_blocking(move || -> Result<Arc<Tiers>> {
        let native = NativeRuntime::new(native).context("starting the native runtime")?;
        let tiers = Arc::new(Tiers::new(native, gvisor));
        if required {
            tiers
                .check(Isolation::Gvisor)
                .context("[runtime] gvisor = \"required\"")?;
        }
        Ok(tiers)
    })
    .await?
}

/// Checks every tier off the start-up path and logs one line saying which
/// are available (and why not).
pub fn report_in_background(tiers: &Arc<Tiers>) {
    let tiers = tiers.clone();
    tokio::task::spawn_blocking(move || {
        let statuses = tiers.probe();
        eprintln!("warden: isolation tiers: {}", describe(&statuses));
    });
}

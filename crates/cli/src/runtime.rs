//! Locating the init and opening a runtime from the environment.

use anyhow::{Context, Result};
use std::path::PathBuf;
use warden_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warden_runtime::native::{NativeConfig, NativeRuntime};
use warden_runtime::Runtime;
use warden_spec::Isolation;

/// `WARDEN_INIT`, else the statically linked `warden-init-static` next to
/// this binary (what `make build` installs; it starts faster), else
/// `warden-init` next to it.
pub fn init_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("WARDEN_INIT") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot locate the warden binary")?;
    let dir = exe.parent().context("warden binary has no directory")?;
    Ok(warden_runtime::native::init_in(dir))
}

fn state_dir() -> PathBuf {
    std::env::var_os("WARDEN_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/warden"))
}

fn cgroup_parent() -> String {
    std::env::var("WARDEN_CGROUP_PARENT").unwrap_or_else(|_| "warden".into())
}

/// The native runtime, with sandboxes pre-started (for many sandboxes;
/// `WARDEN_PRESTART` sets how many, as for `warden serve`).
pub fn native() -> Result<NativeRuntime> {
    let prestart = match std::env::var("WARDEN_PRESTART") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("WARDEN_PRESTART={v:?}"))?,
        Err(_) => warden_runtime::native::prestart::POOL_SIZE,
    };
    native_with_pool(prestart)
}

/// The native runtime keeping `prestart` sandboxes pre-started (0 for one
/// sandbox, which would only discard them again).
pub fn native_with_pool(prestart: usize) -> Result<NativeRuntime> {
    NativeRuntime::new(native_config(prestart)?).context("cannot start the native runtime")
}

fn native_config(prestart: usize) -> Result<NativeConfig> {
    Ok(NativeConfig {
        init_path: init_path()?,
        state_dir: state_dir(),
        cgroup_parent: cgroup_parent(),
        favor_dynmods: std::env::var("WARDEN_CGROUP_FAVOR_DYNMODS").as_deref() != Ok("0"),
        prestart,
    })
}

/// The gVisor runtime: `WARDEN_RUNSC` (else `runsc` in `PATH`) on
/// `WARDEN_GVISOR_PLATFORM` (else the first platform that works here).
pub fn gvisor() -> Result<GvisorRuntime> {
    let cfg = GvisorConfig {
        runsc: std::env::var_os("WARDEN_RUNSC").map(PathBuf::from),
        init_path: init_path()?,
        state_dir: state_dir(),
        cgroup_parent: cgroup_parent(),
        platform: std::env::var("WARDEN_GVISOR_PLATFORM")
            .ok()
            .filter(|p| !p.is_empty()),
        // One sandbox: a pool would only boot sandboxes to discard them.
        prestart: 0,
    };
    // The error already says "the gvisor isolation tier is unavailable: why".
    Ok(GvisorRuntime::new(cfg)?)
}

/// The runtime for one sandbox (`warden run`) of `spec`, on its tier.
pub fn for_spec(spec: &warden_spec::SandboxSpec) -> Result<Box<dyn Runtime>> {
    Ok(match spec.isolation {
        Isolation::Native => Box::new(
            NativeRuntime::one_shot(native_config(0)?, spec)
                .context("cannot start the native runtime")?,
        ),
        Isolation::Gvisor => Box::new(gvisor()?),
    })
}

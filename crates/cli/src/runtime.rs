//! Locating the init and opening the native runtime from the environment.

use anyhow::{Context, Result};
use std::path::PathBuf;
use warden_runtime::native::{NativeConfig, NativeRuntime};

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

pub fn native() -> Result<NativeRuntime> {
    let state_dir = std::env::var_os("WARDEN_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/warden"));
    let cfg = NativeConfig {
        init_path: init_path()?,
        state_dir,
        cgroup_parent: std::env::var("WARDEN_CGROUP_PARENT").unwrap_or_else(|_| "warden".into()),
        favor_dynmods: std::env::var("WARDEN_CGROUP_FAVOR_DYNMODS").as_deref() != Ok("0"),
    };
    NativeRuntime::new(cfg).context("cannot start the native runtime")
}

//! Choosing a gVisor platform that works on this host.
//!
//! The platform is how the Sentry intercepts the application's system calls.
//! Which one works depends on the host: here (a Firecracker guest) `ptrace`
//! works and `kvm` hangs, and runsc 2022 does not know `systrap` yet. So the
//! runtime tries candidates with a trivial sandbox (`runsc do true`) under a
//! short deadline, and remembers the answer per runsc binary so that each
//! `warden run` does not pay for the probe again.

use super::runsc::{wait_or_kill, Runsc};
use super::GvisorError;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Tried in order when no platform is configured. kvm is never guessed: on
/// hosts without working nested virtualisation it hangs rather than fails.
pub const CANDIDATES: &[&str] = &["systrap", "ptrace"];

/// How long a trivial sandbox may take before its platform counts as broken.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// The first of `candidates` that runs `true` in a sandbox. `dir` holds the
/// cache and the probes' scratch state.
pub fn choose(binary: &Path, dir: &Path, candidates: &[String]) -> Result<String, GvisorError> {
    let cache = dir.join("platform");
    let key = cache_key(binary, candidates);
    if let Some(key) = &key {
        if let Ok(text) = std::fs::read_to_string(&cache) {
            if let Some((k, p)) = text.trim().split_once(' ') {
                if k == key && candidates.iter().any(|c| c == p) {
                    return Ok(p.to_string());
                }
            }
        }
    }
    let mut failures = Vec::new();
    for p in candidates {
        match probe(binary, dir, p) {
            Ok(()) => {
                if let Some(key) = &key {
                    // Only a speed-up: a failure to write it costs a probe
                    // next time. Written aside and renamed, so a concurrent
                    // reader sees the old answer or the new, never half.
                    let tmp = dir.join(format!(".platform-{}", std::process::id()));
                    if std::fs::write(&tmp, format!("{key} {p}\n")).is_ok() {
                        let _ = std::fs::rename(&tmp, &cache);
                    }
                }
                return Ok(p.clone());
            }
            Err(why) => failures.push(format!("{p}: {why}")),
        }
    }
    Err(GvisorError::NoPlatform(failures.join("; ")))
}

/// Identifies the runsc binary (size, inode and modification time), the
/// kernel and the candidate list, so an upgrade of either or another
/// configuration probes afresh.
fn cache_key(binary: &Path, candidates: &[String]) -> Option<String> {
    let md = std::fs::metadata(binary).ok()?;
    let uname = rustix::system::uname();
    Some(format!(
        "{}:{}:{}.{}:{}:{}",
        md.len(),
        md.ino(),
        md.mtime(),
        md.mtime_nsec(),
        uname.release().to_string_lossy().replace(' ', "_"),
        candidates.join(",")
    ))
}

/// Runs `runsc do true` on `platform`; the reason it failed otherwise.
fn probe(binary: &Path, dir: &Path, platform: &str) -> Result<(), String> {
    let rs = Runsc {
        binary: binary.to_path_buf(),
        root: dir.join(format!("probe-{}-{platform}", std::process::id())),
        platform: platform.to_string(),
    };
    let _ = std::fs::create_dir_all(&rs.root);
    let log = dir.join(format!("probe-{}-{platform}.log", std::process::id()));
    let result = (|| {
        let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = {
            use std::os::unix::process::CommandExt;
            rs.command()
                .args(["do", "true"])
                .current_dir("/")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .process_group(0)
                .spawn()
                .map_err(|e| e.to_string())?
        };
        let status = wait_or_kill(&mut child, PROBE_DEADLINE);
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let said = said.lines().last().unwrap_or("").trim().to_string();
        match status {
            Some(st) if st.success() => Ok(()),
            Some(st) => Err(format!("runsc do true: {st}: {said}")),
            None => Err(format!(
                "runsc do true did not finish within {}s",
                PROBE_DEADLINE.as_secs()
            )),
        }
    })();
    // A hung probe leaves a sandbox behind: remove it with runsc itself.
    if let Ok(ids) = rs.list() {
        for id in ids {
            let _ = rs.kill(&id);
            let _ = rs.delete(&id);
        }
    }
    let _ = std::fs::remove_dir_all(&rs.root);
    let _ = std::fs::remove_file(&log);
    result
}

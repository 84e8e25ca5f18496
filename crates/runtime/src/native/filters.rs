//! The seccomp policy's two compiled parts (see
//! `warden_confine::seccomp_split`), kept in the shared cache (`cache.rs`).
//!
//! Compiling them parses the policy's JSON and runs the filter compiler
//! twice: ~0.3 ms of every `warden run`, for a result that depends on
//! nothing but the policy, which is part of the binary. So it is compiled
//! once, keyed by the policy text itself, and read back (two small files)
//! by every later process. The bytes are checked as they are decoded; a
//! cache that cannot be read falls back to compiling.

use crate::cache;
use crate::RuntimeError;
use std::fs;
use std::path::Path;
use warden_confine::{
    load_seccomp_split, policy_json, CompiledFilter, PolicyArch, SplitFilter, SETUP_SYSCALLS,
};

const INHERITED: &str = "inherited.bpf";
const OWN: &str = "own.bpf";

/// The split policy, from the cache under `dir` (built there first unless
/// an entry for this very policy is there).
pub fn obtain(dir: &Path) -> Result<SplitFilter, RuntimeError> {
    let Some(arch) = PolicyArch::native() else {
        // The error says which architecture has no policy.
        return Ok(load_seccomp_split()?);
    };
    let mut key = cache::Key::new("seccomp");
    key.text(arch.name().as_bytes());
    key.text(policy_json(arch).as_bytes());
    for name in SETUP_SYSCALLS {
        key.text(name.as_bytes());
    }
    let cached = cache::obtain(dir, "seccomp", key.finish(), &|tree| {
        let split = load_seccomp_split().map_err(std::io::Error::other)?;
        fs::create_dir(tree)?;
        fs::write(tree.join(INHERITED), split.inherited.to_bytes())?;
        fs::write(tree.join(OWN), split.own.to_bytes())
    });
    let read = |entry: &cache::Entry| -> Option<SplitFilter> {
        let part = |name| {
            let bytes = fs::read(entry.tree().join(name)).ok()?;
            CompiledFilter::from_bytes(&bytes).ok()
        };
        Some(SplitFilter {
            inherited: part(INHERITED)?,
            own: part(OWN)?,
        })
    };
    match cached {
        Ok(entry) => match read(&entry) {
            Some(split) => Ok(split),
            None => {
                tracing::warn!(
                    "the cached seccomp filters in {} do not decode; compiling them",
                    entry.dir().display()
                );
                Ok(load_seccomp_split()?)
            }
        },
        Err(e) => {
            tracing::warn!("cannot cache the seccomp filters ({e}); compiling them");
            Ok(load_seccomp_split()?)
        }
    }
}

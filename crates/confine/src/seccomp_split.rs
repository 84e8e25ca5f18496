//! The seccomp policy in two parts, so a sandbox attaches only a small one.
//!
//! Attaching a filter costs the kernel time in proportion to its length
//! (JIT, and the action cache, which runs the filter once per syscall
//! number): ~0.27 ms for the whole ~400-instruction policy, a fixed price
//! per sandbox. Most of the policy denies things a sandbox's set-up never
//! does (ptrace, bpf, keyctl, io_uring, kernel administration, ...), so that
//! part can be attached once to the long-lived parent the sandboxes are
//! cloned from (the native runtime's zygote) and inherited for free: a
//! filter is copied to every child and can never be removed. Each sandbox
//! then attaches only the rules for the calls its own set-up (or the
//! zygote) needs, at the end of its set-up as before.
//!
//! The parts split the rules by syscall name, so every syscall's rules sit
//! in exactly one part and the other part allows it: the stacked result
//! answers every call exactly as the whole policy does (seccomp returns the
//! strictest answer of all filters).

use crate::{compile_seccomp_policy, policy_json, CompiledFilter, ConfineError, PolicyArch};

/// The calls whose rules each sandbox attaches itself: its set-up mounts,
/// pivots and unshares its cgroup namespace, and the zygote enters network
/// namespaces and clones into new ones (with the classic `clone`, whose
/// flags the policy can check; `clone3` stays refused for all). All of them
/// are EPERM rules, so the part compiles to a single filter: one attach per
/// sandbox.
pub const SETUP_SYSCALLS: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "clone",
    // The root tmpfs is made detached and attached by descriptor (see
    // `warden_inside::init`'s `rootfs::root_tmpfs`).
    "fsopen",
    "fsconfig",
    "fsmount",
    "move_mount",
];

/// The policy in two parts (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitFilter {
    /// Everything set-up never needs: attached once by the zygote.
    pub inherited: CompiledFilter,
    /// The rules for [`SETUP_SYSCALLS`]: attached by each sandbox last.
    pub own: CompiledFilter,
}

/// The shipped policy for the running architecture, split.
pub fn load_seccomp_split() -> Result<SplitFilter, ConfineError> {
    let arch = PolicyArch::native().ok_or(ConfineError::UnsupportedArch(std::env::consts::ARCH))?;
    split_seccomp_policy(policy_json(arch), arch, SETUP_SYSCALLS)
}

/// Splits a policy (seccompiler JSON) into the rules for `own` syscalls and
/// the rest, and compiles both. Filters left without rules are dropped.
pub fn split_seccomp_policy(
    json: &str,
    arch: PolicyArch,
    own: &[&str],
) -> Result<SplitFilter, ConfineError> {
    let bad = |detail: String| ConfineError::SeccompPolicy {
        arch: arch.name(),
        detail,
    };
    let policy: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| bad(format!("not a JSON object: {e}")))?;
    let (mut inherited, mut mine) = (serde_json::Map::new(), serde_json::Map::new());
    for (name, filter) in policy {
        let rules = filter
            .get("filter")
            .and_then(|f| f.as_array())
            .ok_or_else(|| bad(format!("filter {name} has no rule list")))?;
        let (o, i): (Vec<_>, Vec<_>) = rules.iter().cloned().partition(|r| {
            r.get("syscall")
                .and_then(|s| s.as_str())
                .is_some_and(|s| own.contains(&s))
        });
        for (part, rules) in [(&mut inherited, i), (&mut mine, o)] {
            if !rules.is_empty() {
                let mut f = filter.clone();
                f["filter"] = serde_json::Value::Array(rules);
                part.insert(name.clone(), f);
            }
        }
    }
    let compile = |m: serde_json::Map<String, serde_json::Value>| {
        compile_seccomp_policy(&serde_json::Value::Object(m).to_string(), arch)
    };
    Ok(SplitFilter {
        inherited: compile(inherited)?,
        own: compile(mine)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_part_is_small_and_names_every_setup_call() {
        for arch in [PolicyArch::X86_64, PolicyArch::Aarch64] {
            let json = policy_json(arch);
            let split = split_seccomp_policy(json, arch, SETUP_SYSCALLS).unwrap();
            let whole = crate::load_seccomp_filter_for(arch).unwrap();
            // The own part is small (about a quarter, with the new mount
            // API's four calls), and one filter: that is the point.
            let (own, all) = (split.own.instruction_count(), whole.instruction_count());
            assert!(own * 3 < all, "{arch:?}: {own} of {all} instructions");
            assert_eq!(split.own.programs().len(), 1, "{arch:?}");
            let policy: serde_json::Value = serde_json::from_str(json).unwrap();
            let names = |v: &serde_json::Value| -> Vec<String> {
                let mut n: Vec<String> = v
                    .as_object()
                    .unwrap()
                    .values()
                    .flat_map(|f| f["filter"].as_array().unwrap().iter())
                    .map(|r| r["syscall"].as_str().unwrap().to_string())
                    .collect();
                n.sort();
                n
            };
            let all = names(&policy);
            for s in SETUP_SYSCALLS {
                assert!(all.iter().any(|n| n == s), "{s} not in the {arch:?} policy");
            }
            // Nothing but the own part names a setup call: an empty list
            // leaves everything inherited.
            let none = split_seccomp_policy(json, arch, &[]);
            assert!(
                none.is_err(),
                "an own part with no rules compiles to nothing"
            );
        }
    }
}

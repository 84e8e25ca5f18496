//! `warden-confine`: the last steps that lock a sandbox process down.
//!
//! Called inside the sandbox (after `pivot_root`, with the sandbox's own paths
//! visible), single-threaded, in this order:
//!
//! 1. [`apply_rlimits`]
//! 2. drop supplementary groups + `setresgid`/`setresuid` (the caller does this;
//!    call [`drop_bounding_and_ambient`] *before* it if the target uid is not root,
//!    because after the uid change the process no longer holds `CAP_SETPCAP`)
//! 3. [`drop_all_capabilities`] (or, after [`drop_bounding_and_ambient`],
//!    the cheaper [`clear_capability_sets`])
//! 4. [`set_no_new_privs`]
//! 5. [`apply_landlock`]
//! 6. [`apply_seccomp`] (last: the filter also denies syscalls the earlier steps use)
//!
//! Everything here is inherited across `fork`/`clone`/`execve`, so every process
//! the sandbox's init spawns runs under the same restrictions.
//!
//! The seccomp policy is data (`policy/<arch>.json`, seccompiler's JSON format);
//! see `policy/README.md` for the rationale of each rule group.

mod capabilities;
mod error;
mod landlock_fs;
mod rlimits;
mod seccomp;
mod seccomp_split;

pub use capabilities::{
    clear_capability_sets, drop_all_capabilities, drop_bounding_and_ambient, set_no_new_privs,
};
pub use error::ConfineError;
pub use landlock_fs::{apply_landlock, landlock_abi_version, LandlockPaths, LandlockStatus};
pub use rlimits::{apply_rlimits, Rlimits};
pub use seccomp::{
    apply_seccomp, apply_seccomp_all_threads, compile_seccomp_policy, load_seccomp_filter,
    load_seccomp_filter_for, policy_json, CompiledFilter, PolicyArch,
};
pub use seccomp_split::{load_seccomp_split, split_seccomp_policy, SplitFilter, SETUP_SYSCALLS};

//! A boot id of the sandbox's own.
//!
//! `/proc/sys/kernel/random/boot_id` is the host kernel's, the same in
//! every sandbox and after every restart of one. Code in the sandbox reads
//! it to tell whether the machine rebooted (E2B's tests tell a resumed
//! sandbox that kept its memory from one that cold-booted by it), and the
//! host's value is one more thing a tenant has no need to see. Each start
//! of the init (a create, a resume from files) gets a fresh random id: a
//! read-only bind of a file of its own over the kernel's.

use super::rootfs::{bind_read_only, write_own_file, MountError, Result};
use crate::setup::OWN_FILES;
use std::path::Path;

/// Mounts a fresh boot id over the sandbox's (`root`'s new /proc). The
/// file lives on the root tmpfs (a bind's source must be a mount of the
/// sandbox's own namespace, which an in-memory file is not).
pub fn mount_own(root: &Path) -> Result<()> {
    let proc = root.join("proc");
    let target = proc.join("sys/kernel/random/boot_id");
    // The kernel makes a fresh random (v4) UUID on every read of this file.
    let fresh = proc.join("sys/kernel/random/uuid");
    let id = std::fs::read_to_string(&fresh).map_err(|source| MountError {
        what: "read a fresh boot id from",
        path: fresh.clone(),
        source,
    })?;
    write_own_file(root, "boot_id", &id)?;
    let source = root.join(OWN_FILES).join("boot_id");
    bind_read_only(&source, &target)
}

use std::io;

use crate::ConfineError;

/// Resource limits applied with soft = hard (so the sandbox cannot raise them).
///
/// `None` leaves the inherited limit untouched. `u64::MAX` is `RLIM_INFINITY`.
///
/// Note: `RLIMIT_NPROC` counts all processes of the *real uid* (as the kernel
/// sees it), not just the sandbox's; give each sandbox its own uid if you rely
/// on it. It is not enforced for processes holding `CAP_SYS_RESOURCE` or
/// `CAP_SYS_ADMIN`, so it only bites after the capabilities are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimits {
    /// `RLIMIT_NOFILE`: max open file descriptors (+1).
    pub nofile: u64,
    /// `RLIMIT_NPROC`: max processes/threads of the real uid.
    pub nproc: Option<u64>,
    /// `RLIMIT_FSIZE`: max file size a write may produce, in bytes. Exceeding it
    /// raises `SIGXFSZ` (fatal by default) or fails with `EFBIG` if ignored.
    pub fsize_bytes: Option<u64>,
    /// `RLIMIT_CORE`: max core dump size; 0 disables core dumps.
    pub core: u64,
    /// `RLIMIT_MEMLOCK`: max bytes of locked memory.
    pub memlock: u64,
    /// `RLIMIT_STACK`: main-thread stack size in bytes.
    pub stack: Option<u64>,
}

impl Default for Rlimits {
    fn default() -> Self {
        Self {
            nofile: 1024,
            nproc: None,
            fsize_bytes: None,
            core: 0,
            memlock: 8 << 20,
            stack: None,
        }
    }
}

/// Applies every limit in `r` with soft = hard.
///
/// Raising a hard limit needs `CAP_SYS_RESOURCE`, so call this before dropping
/// capabilities. Stops at the first failure.
pub fn apply_rlimits(r: &Rlimits) -> Result<(), ConfineError> {
    let limits = [
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE, Some(r.nofile)),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC, r.nproc),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE, r.fsize_bytes),
        ("RLIMIT_CORE", libc::RLIMIT_CORE, Some(r.core)),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK, Some(r.memlock)),
        ("RLIMIT_STACK", libc::RLIMIT_STACK, r.stack),
    ];
    for (name, resource, value) in limits {
        let Some(value) = value else { continue };
        let lim = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: `lim` is a valid, initialised rlimit that outlives the call.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(ConfineError::Rlimit {
                resource: name,
                value,
                source: io::Error::last_os_error(),
            });
        }
        tracing::debug!(resource = name, value, "rlimit set");
    }
    Ok(())
}

//! Landlock: filesystem allow-list plus (ABI >= 6) IPC scoping.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, BitFlags, PathBeneath, PathFd, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::ConfineError;

/// Newest Landlock ABI whose semantics this crate requests and tests.
///
/// V6 = all filesystem rights up to `IoctlDev` (V5) plus the abstract-unix-socket
/// and signal scopes. V7 only adds audit-log flags (nothing to request). V9's
/// `ResolveUnix` would deny connecting to pathname unix sockets outside the
/// allowed trees; bump this only together with tests on such a kernel.
/// On older kernels the landlock crate downgrades (best effort).
const TARGET_ABI: ABI = ABI::V6;

/// Path trees the sandbox may use. Everything else is denied for the
/// operations Landlock handles (open for read/write/exec, readdir, create,
/// remove, rename/link across dirs, truncate, device ioctls).
///
/// Remember the pseudo filesystems: `/proc` (read, or read-write for
/// `/proc/self/...` writes), `/dev/null` and friends (read-write: writing a
/// device needs `WriteFile`, ioctls on devices need `IoctlDev`), `/tmp`.
/// Landlock does not restrict `stat`, `chmod`, `chown`, xattrs or already-open
/// file descriptors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LandlockPaths {
    /// Read files, list directories, execute.
    pub read_exec: Vec<PathBuf>,
    /// Everything Landlock handles.
    pub read_write: Vec<PathBuf>,
}

/// Outcome of [`apply_landlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockStatus {
    /// Everything requested (filesystem rights and scopes of Landlock ABI 6) is enforced.
    FullyEnforced,
    /// An older kernel: only part of the requested rights/scopes are enforced.
    PartiallyEnforced,
    /// Landlock unavailable (not built in, or not enabled at boot).
    NotEnforced,
}

/// The kernel's Landlock ABI version, `None` if Landlock is unavailable.
/// Informational (logging): `apply_landlock` negotiates on its own.
pub fn landlock_abi_version() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: with the VERSION flag the kernel ignores attr/size and returns the ABI.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).ok().filter(|&v| v > 0)
}

/// Restricts the calling thread (and all its future children) to `p`.
///
/// Also sets `no_new_privs` (required by Landlock for unprivileged callers).
/// Paths that do not exist are skipped with a warning (that only removes
/// access); any other failure to open a path is an error. Single-threaded
/// callers only: other existing threads are not restricted.
pub fn apply_landlock(p: &LandlockPaths) -> Result<LandlockStatus, ConfineError> {
    let abi = TARGET_ABI;
    let ruleset = landlock::Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(|source| ConfineError::Landlock {
            step: "handle filesystem access",
            source,
        })?
        .scope(Scope::from_all(abi))
        .map_err(|source| ConfineError::Landlock {
            step: "scope abstract unix sockets and signals",
            source,
        })?
        .create()
        .map_err(|source| ConfineError::Landlock {
            step: "create ruleset",
            source,
        })?;
    let ruleset = add_paths(ruleset, &p.read_exec, AccessFs::from_read(abi))?;
    let ruleset = add_paths(ruleset, &p.read_write, AccessFs::from_all(abi))?;
    let status = ruleset
        .restrict_self()
        .map_err(|source| ConfineError::Landlock {
            step: "restrict_self",
            source,
        })?;
    let out = match status.ruleset {
        RulesetStatus::FullyEnforced => LandlockStatus::FullyEnforced,
        RulesetStatus::PartiallyEnforced => LandlockStatus::PartiallyEnforced,
        RulesetStatus::NotEnforced => LandlockStatus::NotEnforced,
    };
    tracing::debug!(status = ?out, landlock = ?status.landlock, "landlock applied");
    Ok(out)
}

fn add_paths(
    mut ruleset: RulesetCreated,
    paths: &[PathBuf],
    access: BitFlags<AccessFs>,
) -> Result<RulesetCreated, ConfineError> {
    for path in paths {
        let Some((fd, is_dir)) = open_path(path)? else {
            tracing::warn!(?path, "landlock: allowed path does not exist, skipped");
            continue;
        };
        // Directory-only rights (readdir, create, remove...) are invalid on a file.
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(TARGET_ABI)
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|source| ConfineError::Landlock {
                step: "add path rule",
                source,
            })?;
    }
    Ok(ruleset)
}

/// `Ok(None)` when the path does not exist.
fn open_path(path: &Path) -> Result<Option<(PathFd, bool)>, ConfineError> {
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        Err(landlock::PathFdError::OpenCall { source, .. })
            if source.kind() == io::ErrorKind::NotFound =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(ConfineError::LandlockPath {
                path: path.to_path_buf(),
                source: io::Error::other(e),
            })
        }
    };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat on an O_PATH fd we own, into a properly sized buffer.
    if unsafe { libc::fstat(fd.as_fd().as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(ConfineError::LandlockPath {
            path: path.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: fstat succeeded, so it initialised `st`.
    let is_dir = unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFDIR;
    Ok(Some((fd, is_dir)))
}

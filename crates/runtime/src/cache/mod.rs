//! Directories built once and shared by every Warden process on the host:
//! the host image's `/etc` template, the `/dev` template and the gVisor
//! tier's shared skeleton root.
//!
//! None of them depends on a sandbox, only on what they are built from (the
//! host's `/etc`, the init binary, runsc's view of the host image), so a
//! `warden run` should not pay for building them and deleting them again
//! (~800 symlinks, ~70 copies and as many unlinks each time). Each entry is
//! named after a digest of its inputs ([`Key`]); a change to any input is a
//! different name, so a stale entry is never found, only collected.
//!
//! Safety against concurrent and crashed processes:
//! - An entry is built under a temporary name, gets its `complete` marker
//!   (holding the full key) last, and only then is renamed into place;
//!   rename of a directory is atomic, and of two processes building the same
//!   entry the second one's rename fails and it uses the first one's. An
//!   entry found without its marker (or with another key in it) is never
//!   used: it is moved aside and rebuilt.
//! - The key includes the boot id. Within one boot a crashed builder cannot
//!   leave a complete-looking entry behind (its writes are in the page
//!   cache, and the marker comes last); across a power loss nothing written
//!   before is trusted, as if the state directory were a tmpfs.
//! - Every user holds a shared `flock` on the entry's directory for as long
//!   as it may hand the entry to a sandbox (the kernel drops it when the
//!   process dies, however it dies). An entry is removed only by whoever
//!   gets the exclusive lock without waiting, so never while in use.
//! - A key computed from inputs modified in the last second could miss a
//!   second change within the same timestamp tick ([`Key::finish`]); such a
//!   build is private to the process and removed when it is done with it.
//!
//! Nothing of a sandbox's own goes into an entry: builders only read the
//! host's files, and sandboxes see entries read-only.

mod key;

pub use key::{memoized, Key};

use crate::gvisor::owner;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bumped whenever what a builder writes changes, so that entries an older
/// Warden wrote are rebuilt rather than trusted.
const FORMAT: &str = "warden-cache-1";

/// The marker an entry gets last; it holds the entry's full key.
pub const MARKER: &str = "complete";

/// The entry's content, next to its marker.
pub const TREE: &str = "tree";

/// Inputs modified this recently make a key that could miss a second change
/// within the same timestamp tick (file times come from a clock that
/// advances in ticks of a few milliseconds).
const RACY: Duration = Duration::from_secs(1);

/// Lookups before giving up; each lost race (an entry removed or replaced
/// between our look and our lock) costs one.
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct CacheError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    move |source| CacheError {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl From<CacheError> for crate::RuntimeError {
    fn from(e: CacheError) -> Self {
        crate::RuntimeError::State {
            path: e.path,
            source: io::Error::new(e.source.kind(), format!("{}: {}", e.what, e.source)),
        }
    }
}

/// One entry in use: its directory stays where it is, complete, until this
/// is dropped (a private entry is removed then).
#[derive(Debug)]
pub struct Entry {
    dir: PathBuf,
    /// The shared lock that keeps collectors away (shared entries only).
    _lock: Option<File>,
    private: bool,
}

impl Entry {
    /// The entry's directory (holding [`TREE`] and [`MARKER`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the builder made.
    pub fn tree(&self) -> PathBuf {
        self.dir.join(TREE)
    }

    /// Whether this entry is the process's own (its key was not trusted).
    pub fn is_private(&self) -> bool {
        self.private
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if self.private {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The name of the entry of `kind` with `key`.
pub fn entry_name(kind: &str, key: &str) -> String {
    format!("{kind}.{}", &key[..key.len().min(32)])
}

/// The entry of `kind` for `key` under `base`, built by `build` (into an
/// empty directory that does not exist yet) unless a complete one is there.
/// Entries of the same kind that nobody uses any more are removed.
pub fn obtain(
    base: &Path,
    kind: &str,
    key: Option<String>,
    build: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<Entry, CacheError> {
    fs::create_dir_all(base).map_err(err("create", base))?;
    let Some(key) = key else {
        let dir = build_aside(base, "private", build, None)?;
        collect(base, kind, None);
        return Ok(Entry {
            dir,
            _lock: None,
            private: true,
        });
    };
    let name = entry_name(kind, &key);
    let path = base.join(&name);
    for _ in 0..ATTEMPTS {
        match lock_shared(&path, &key)? {
            Found::Complete(lock) => {
                collect(base, kind, Some(&name));
                return Ok(Entry {
                    dir: path,
                    _lock: Some(lock),
                    private: false,
                });
            }
            Found::Missing => {}
            Found::Incomplete => discard(base, &path),
        }
        let tmp = build_aside(base, "build", build, Some(&key))?;
        match fs::rename(&tmp, &path) {
            Ok(()) => {}
            // Someone else's landed first (or a broken one sits there, to
            // be discarded on the next round): ours is not needed.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(err("move into place", &path)(e));
            }
        }
    }
    Err(err("obtain", &path)(io::Error::other(
        "the entry kept changing under us",
    )))
}

enum Found {
    Complete(File),
    Missing,
    Incomplete,
}

/// Opens `path` and takes a shared lock on it; `Complete` only if it is
/// still the directory at `path` once locked and its marker says `key`.
fn lock_shared(path: &Path, key: &str) -> Result<Found, CacheError> {
    let dir = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(err("open", path)(e)),
    };
    // Waits only while a collector moves a stale entry aside.
    rustix::fs::flock(dir.as_fd(), rustix::fs::FlockOperation::LockShared)
        .map_err(|e| err("lock", path)(e.into()))?;
    if !still_at(&dir, path) {
        return Ok(Found::Missing);
    }
    match fs::read_to_string(path.join(MARKER)) {
        Ok(k) if k == key => Ok(Found::Complete(dir)),
        _ => Ok(Found::Incomplete),
    }
}

/// Whether the directory open as `f` is (still) the one at `path`.
fn still_at(f: &File, path: &Path) -> bool {
    match (f.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A fresh directory under `base` with a name of this process's own, made
/// by `build` (in its `tree`) and marked complete with `key` when given.
/// Removed again if anything fails.
fn build_aside(
    base: &Path,
    what: &str,
    build: &dyn Fn(&Path) -> io::Result<()>,
    key: Option<&str>,
) -> Result<PathBuf, CacheError> {
    let tmp = base.join(own_name(what));
    let made = (|| {
        fs::create_dir(&tmp)?;
        // Traversable by the sandbox's unprivileged host uid (a native init
        // binds the tree itself), whatever the umask.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
        build(&tmp.join(TREE))?;
        if let Some(key) = key {
            // Last: an entry without it is never used.
            fs::write(tmp.join(MARKER), key)?;
        }
        Ok(())
    })();
    match made {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(err("build", &tmp)(e))
        }
    }
}

/// `.<what>-<pid>-<start time>-<random>`: dot-names are never entries, and
/// the owner part lets a collector tell a crashed process's leftovers from
/// a live one's work in progress.
fn own_name(what: &str) -> String {
    let pid = std::process::id();
    let start = owner::start_time(pid).unwrap_or(0);
    format!(".{what}-{pid}-{start}-{:016x}", rand::random::<u64>())
}

/// Whether a dot-name made by [`own_name`] belongs to a process that is gone.
fn owner_gone(name: &str) -> bool {
    let mut parts = name.trim_start_matches('.').splitn(4, '-');
    let (_, Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    owner::start_time(pid) != Some(start)
}

/// Moves the entry at `path` aside and removes it, if nobody holds it.
fn discard(base: &Path, path: &Path) {
    let Ok(dir) = File::open(path) else { return };
    let op = rustix::fs::FlockOperation::NonBlockingLockExclusive;
    if rustix::fs::flock(dir.as_fd(), op).is_err() || !still_at(&dir, path) {
        return;
    }
    let trash = base.join(own_name("trash"));
    if fs::rename(path, &trash).is_ok() {
        // Out of sight now: whoever waits for the lock finds it gone.
        drop(dir);
        let _ = fs::remove_dir_all(&trash);
    }
}

/// Removes what nobody uses any more: entries of `kind` other than `keep`
/// that no process holds, dot-names of processes that are gone, and
/// templates of the per-process layout Warden used before this cache
/// (`<kind>-<pid>-<nanoseconds>`) whose process is gone.
fn collect(base: &Path, kind: &str, keep: Option<&str>) {
    let Ok(rd) = fs::read_dir(base) else { return };
    let prefix = format!("{kind}.");
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            if owner_gone(&name) {
                // A build, a trash directory, or a memo being written.
                if fs::remove_dir_all(ent.path()).is_err() {
                    let _ = fs::remove_file(ent.path());
                }
            }
        } else if name.starts_with(&prefix) && Some(name.as_str()) != keep {
            discard(base, &ent.path());
        } else if legacy_orphan(&name) {
            let _ = fs::remove_dir_all(ent.path());
        }
    }
}

fn legacy_orphan(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    match parts.as_slice() {
        [_, pid, ns] if ns.parse::<u128>().is_ok() => pid
            .parse::<u32>()
            .is_ok_and(|p| !Path::new("/proc").join(p.to_string()).exists()),
        _ => false,
    }
}

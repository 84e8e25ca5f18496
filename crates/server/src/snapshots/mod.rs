//! Filesystem snapshots of sandboxes: what a snapshot holds (the manifest),
//! taking one from a live sandbox (`capture.rs`) and putting one into a
//! new sandbox (`restore.rs`). Both go through the init's protocol only,
//! so they work the same on every isolation tier.
//!
//! What is taken: everything under the sandbox's writable places whose
//! inode changed since the sandbox started, found by ctime (see the init's
//! `changes.rs`). Without a writable root those places are `/home` (with
//! `/home/user`), `/scratch`, `/tmp` and `/output`; with one, the whole
//! tree. Never
//! `/proc`, `/sys`, `/dev`, `/run`, `/input` (the tenant's files, given
//! again at create) or a volume (which keeps its own state).

pub mod apply;
pub mod base;
pub mod capture;
pub mod restore;
mod restore_one;

use serde::{Deserialize, Serialize};

/// Written into every manifest; a manifest of another version is refused.
pub const MANIFEST_VERSION: u32 = 1;
/// Entries (files, directories, links) one snapshot may hold.
pub const MAX_ENTRIES: u64 = 200_000;
/// Names of changed directories one snapshot may list.
pub const MAX_NAMES: u64 = 1_000_000;
/// Entries not taken listed by path; more are only counted.
pub const MAX_SKIPPED_LISTED: usize = 100;

/// A snapshot's content: every entry taken, parents before their contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: u32,
    pub entries: Vec<Entry>,
    /// What was found but not taken, and why (the first
    /// [`MAX_SKIPPED_LISTED`]).
    pub skipped: Vec<Skipped>,
    pub skipped_unlisted: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A directory and its every name when taken (a restore removes what
    /// else it finds there: the source deleted it).
    Dir {
        path: String,
        mode: u32,
        mtime_ns: i64,
        names: Vec<String>,
    },
    File {
        path: String,
        mode: u32,
        mtime_ns: i64,
        size: u64,
        /// SHA-256 of the content, lower-case hex.
        sha256: String,
        /// Where the content is stored (the tenant's blob).
        blob: String,
    },
    Symlink {
        path: String,
        mtime_ns: i64,
        target: String,
    },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                path
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Where a walk looks and what it leaves alone, for a sandbox with or
/// without a writable root and with volumes at `volume_paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub roots: Vec<String>,
    pub skip: Vec<String>,
}

impl Scope {
    /// The init's walk of this scope for what changed since `since_ns`,
    /// within a snapshot's bounds.
    pub fn walk(&self, since_ns: i64) -> warden_protocol::ChangesWalk<'_> {
        warden_protocol::ChangesWalk {
            roots: &self.roots,
            skip: &self.skip,
            since_ns,
            max_entries: MAX_ENTRIES,
            max_names: MAX_NAMES,
        }
    }

    pub fn of(writable_root: bool, volume_paths: impl IntoIterator<Item = String>) -> Scope {
        // Every fresh file system is a root of its own: one mounted on an
        // older directory (`/home/user` on the image's `/home`) would not
        // be reached through it.
        let top = if writable_root { "/" } else { "/home" };
        let roots = [top, warden_spec::USER_HOME, "/scratch", "/tmp", "/output"]
            .map(String::from)
            .to_vec();
        let mut skip: Vec<String> = ["/proc", "/sys", "/dev", "/run", "/input", "/.warden"]
            .map(String::from)
            .to_vec();
        skip.extend(volume_paths);
        Scope { roots, skip }
    }

    /// Whether `path` is, or is under, a skipped place.
    pub fn skips(&self, path: &str) -> bool {
        self.skip.iter().any(|s| {
            path == s
                || path
                    .strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// `dir` joined with `name` (`/` joined with `x` is `/x`), for paths in a
/// sandbox (the envd front door's too).
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_takes_the_writable_places_and_leaves_the_rest() {
        let plain = Scope::of(false, ["/data".to_string()]);
        assert_eq!(
            plain.roots,
            ["/home", "/home/user", "/scratch", "/tmp", "/output"]
        );
        let root = Scope::of(true, []);
        assert_eq!(root.roots[0], "/");
        for p in [
            "/proc", "/proc/1", "/input/a", "/.warden", "/data", "/data/x",
        ] {
            assert!(plain.skips(p), "{p}");
        }
        for p in ["/processes", "/inputs", "/home/user", "/", "/datasets"] {
            assert!(!plain.skips(p), "{p}");
        }
        assert_eq!(join("/", "usr"), "/usr");
        assert_eq!(join("/home", "user"), "/home/user");
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m = Manifest {
            version: MANIFEST_VERSION,
            entries: vec![
                Entry::Dir {
                    path: "/home/user".into(),
                    mode: 0o755,
                    mtime_ns: 1,
                    names: vec!["a".into()],
                },
                Entry::File {
                    path: "/home/user/a".into(),
                    mode: 0o644,
                    mtime_ns: 2,
                    size: 3,
                    sha256: "ab".into(),
                    blob: "blob_x".into(),
                },
                Entry::Symlink {
                    path: "/home/user/l".into(),
                    mtime_ns: 3,
                    target: "a".into(),
                },
            ],
            skipped: vec![],
            skipped_unlisted: 0,
        };
        let json = serde_json::to_vec(&m).expect("encodes");
        let back: Manifest = serde_json::from_slice(&json).expect("decodes");
        assert_eq!(back, m);
        assert!(String::from_utf8_lossy(&json).contains(r#""kind":"file""#));
    }
}

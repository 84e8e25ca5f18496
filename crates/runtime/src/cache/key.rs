//! Keys of cache entries, and the memo that spares a process the walk.
//!
//! A [`Key`] digests everything an entry is built from: fixed text (the
//! recipe: what Warden puts in, which host names it takes) and the version
//! of every host file it reads, as `stat` reports it. Computing it walks
//! the host's `/etc` (~20 directories, ~1,000 names): over a millisecond,
//! the largest part of a whole-process `warden run` before this memo.
//!
//! The memo (`memo.<kind>` next to the entries) records the key together
//! with every input it was computed from, as (path, what `stat` said). A
//! later process with the same recipe re-`stat`s those paths and, if every
//! one is unchanged, takes the key without walking. That is exact, not a
//! guess: the walk reads file contents only through their stamps, and
//! directory listings only through names, and every change to a listing
//! (a name added, removed, renamed, or replaced, a symlink included) moves
//! the directory's own modification and change times, which are inputs.
//! An input changed too recently to be told apart from a second change in
//! the same clock tick makes no memo (see [`RACY`]), just as it makes no
//! shared entry. A memo that does not parse, names another recipe, or has
//! any input changed is ignored and rewritten; it is only a shortcut to a
//! key, never to an entry's content, which `obtain` still checks.

use super::{FORMAT, RACY};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How an input was looked at, and so how to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Look {
    /// `lstat`, every field of [`file_stamp`].
    File,
    /// `stat` (following links), the fields of [`binary_stamp`].
    Binary,
    /// `lstat` found nothing.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Input {
    path: PathBuf,
    look: Look,
    stamp: Vec<u64>,
}

impl Input {
    /// Whether the input at `path` is still as it was.
    fn holds(&self) -> bool {
        match self.look {
            Look::File => fs::symlink_metadata(&self.path)
                .is_ok_and(|md| file_stamp(&md)[..] == self.stamp[..]),
            Look::Binary => {
                fs::metadata(&self.path).is_ok_and(|md| binary_stamp(&md)[..] == self.stamp[..])
            }
            Look::Missing => {
                fs::symlink_metadata(&self.path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            }
        }
    }
}

/// What identifies a file's version: its inode, type and mode, owner, size,
/// and modification and change times.
fn file_stamp(md: &fs::Metadata) -> [u64; 10] {
    [
        md.dev(),
        md.ino(),
        u64::from(md.mode()),
        u64::from(md.uid()),
        u64::from(md.gid()),
        md.size(),
        md.mtime() as u64,
        md.mtime_nsec() as u64,
        md.ctime() as u64,
        md.ctime_nsec() as u64,
    ]
}

/// What identifies a binary's version: its inode, size and modification
/// time. Not its change time, which moves whenever a hard link to it is
/// made or removed (the gVisor skeleton links the init).
fn binary_stamp(md: &fs::Metadata) -> [u64; 5] {
    [
        md.dev(),
        md.ino(),
        md.size(),
        md.mtime() as u64,
        md.mtime_nsec() as u64,
    ]
}

/// A digest of everything an entry is built from, and the list of host
/// files it read (for the memo).
pub struct Key {
    hash: Sha256,
    racy: bool,
    now: SystemTime,
    inputs: Vec<Input>,
}

impl Key {
    /// A key for entries of `kind`, valid in this boot only.
    pub fn new(kind: &str) -> Key {
        let mut k = Key {
            hash: Sha256::new(),
            racy: false,
            now: SystemTime::now(),
            inputs: Vec::new(),
        };
        k.text(FORMAT.as_bytes());
        k.text(kind.as_bytes());
        // Unreadable only without /proc, where nothing else would work.
        let boot = fs::read("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        k.text(&boot);
        k
    }

    /// Adds a length-prefixed piece of text (so no two sequences collide).
    pub fn text(&mut self, b: &[u8]) {
        self.hash.update((b.len() as u64).to_le_bytes());
        self.hash.update(b);
    }

    fn stamp(&mut self, path: &Path, look: Look, stamp: &[u64]) {
        for n in stamp {
            self.hash.update(n.to_le_bytes());
        }
        self.inputs.push(Input {
            path: path.to_path_buf(),
            look,
            stamp: stamp.to_vec(),
        });
    }

    /// Adds the version of the file at `path` (`md` from `lstat`): for a
    /// directory that also stands for the list of its names.
    pub fn file(&mut self, path: &Path, md: &fs::Metadata) {
        self.stamp(path, Look::File, &file_stamp(md));
        if self.recent(md.mtime(), md.mtime_nsec()) || self.recent(md.ctime(), md.ctime_nsec()) {
            self.racy = true;
        }
    }

    /// Adds the version of the binary at `path` (`md` from `stat`).
    pub fn binary(&mut self, path: &Path, md: &fs::Metadata) {
        self.stamp(path, Look::Binary, &binary_stamp(md));
        if self.recent(md.mtime(), md.mtime_nsec()) {
            self.racy = true;
        }
    }

    /// Adds that nothing is at `path`.
    pub fn missing(&mut self, path: &Path) {
        self.text(b"-");
        self.stamp(path, Look::Missing, &[]);
    }

    fn recent(&self, secs: i64, nsec: i64) -> bool {
        let t = SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs.max(0) as u64)
            + Duration::from_nanos(nsec.max(0) as u64);
        t + RACY > self.now
    }

    fn hex(hash: Sha256) -> String {
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key as hex, or `None` if an input changed too recently for the
    /// key to be trusted later (the caller builds a private entry then).
    pub fn finish(self) -> Option<String> {
        if self.racy {
            return None;
        }
        Some(Key::hex(self.hash))
    }
}

#[derive(Serialize, Deserialize)]
struct Memo {
    /// Digest of the recipe (and format, kind and boot) the key is for.
    recipe: String,
    key: String,
    inputs: Vec<Input>,
}

/// The key for entries of `kind`: `recipe` (fixed text) followed by what
/// `walk` adds from the host's files; taken from the memo under `base`
/// instead when it is for the same recipe and none of its inputs changed
/// (see the module's comment). `None` as for [`Key::finish`].
pub fn memoized(
    base: &Path,
    kind: &str,
    recipe: &[&[u8]],
    walk: impl FnOnce(&mut Key) -> io::Result<()>,
) -> io::Result<Option<String>> {
    let mut key = Key::new(kind);
    for part in recipe {
        key.text(part);
    }
    let recipe = Key::hex(key.hash.clone());
    let path = base.join(format!("memo.{kind}"));
    if let Some(known) = read_memo(&path, &recipe) {
        return Ok(Some(known));
    }
    walk(&mut key)?;
    let inputs = std::mem::take(&mut key.inputs);
    let finished = key.finish();
    if let Some(k) = &finished {
        let memo = Memo {
            recipe,
            key: k.clone(),
            inputs,
        };
        // Only a shortcut: without it the next process walks again.
        if let Err(e) = write_memo(base, &path, &memo) {
            tracing::debug!("cannot write {}: {e}", path.display());
        }
    }
    Ok(finished)
}

fn read_memo(path: &Path, recipe: &str) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let memo: Memo = serde_json::from_slice(&bytes).ok()?;
    let fresh = memo.recipe == recipe
        && !memo.inputs.is_empty()
        && memo.key.len() == 64
        && memo.key.bytes().all(|b| b.is_ascii_hexdigit())
        && memo.inputs.iter().all(Input::holds);
    fresh.then_some(memo.key)
}

/// Written aside and renamed into place: a reader sees an old memo or a
/// new one, never half of one.
fn write_memo(base: &Path, path: &Path, memo: &Memo) -> io::Result<()> {
    fs::create_dir_all(base)?;
    let tmp = base.join(super::own_name("memo"));
    let json = serde_json::to_vec(memo).map_err(io::Error::other)?;
    let written = fs::write(&tmp, json).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

//! The host's compiled locales as one archive, for gVisor sandboxes of the
//! host image.
//!
//! Every command a sandbox starts begins with `setlocale(LC_ALL, "")`, and
//! the environment says `LANG=C.UTF-8`. Debian ships that locale as a
//! directory of a dozen files (`/usr/lib/locale/C.utf8/LC_*`), not in a
//! `locale-archive`, so glibc opens, maps and closes each of them, after
//! trying the un-normalised name first: ~80 system calls per process. On
//! the native tier that is ~40 µs; under gVisor's ptrace platform each call
//! is a trap into the Sentry, and `/bin/echo` took ~21 ms instead of ~14.
//! With an archive glibc opens and maps one file.
//!
//! The archive is built once per host (`localedef --add-to-archive` of every
//! compiled locale directory, on top of a copy of the host's own archive if
//! it has one) into the shared cache (`cache.rs`), keyed by every file it
//! is made from and by `localedef` itself, and shown read-only at
//! `/usr/lib/locale` in place of the host's directory: every locale the
//! host has is in it, so `locale -a` lists the same names. It holds only
//! the host's public locale data. Without `localedef`, or without compiled
//! locales, nothing is mounted and sandboxes read the host's directory.

use crate::cache;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where glibc looks for compiled locales (and its archive).
pub const LOCALE_DIR: &str = "/usr/lib/locale";
const ARCHIVE: &str = "locale-archive";
const LOCALEDEF: &str = "/usr/bin/localedef";

/// The archive's directory, held (locked against collection) while the
/// runtime may mount it.
#[derive(Debug)]
pub struct LocaleArchive {
    _entry: cache::Entry,
    /// Mounted at [`LOCALE_DIR`].
    pub dir: PathBuf,
}

/// The compiled locale directories in `dir` (those with an `LC_CTYPE`).
fn compiled(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("LC_CTYPE").is_file())
        .collect();
    found.sort();
    found
}

/// The archive from the cache in `templates`, built there first unless an
/// up-to-date one is; `None` where there is nothing to build it from or
/// nothing to build it with (then sandboxes read the host's directory).
pub fn obtain(templates: &Path) -> Option<LocaleArchive> {
    let host = Path::new(LOCALE_DIR);
    let localedef = fs::metadata(LOCALEDEF).ok()?;
    if compiled(host).is_empty() {
        return None;
    }
    let key = cache::memoized(templates, "locale", &[], |key| {
        key.binary(Path::new(LOCALEDEF), &localedef);
        // Every file and directory under it, at any depth (LC_MESSAGES/).
        crate::native::templates::hash_tree(key, host, &fs::symlink_metadata(host)?)
    });
    let key = match key {
        Ok(k) => k,
        Err(e) => {
            tracing::debug!("no locale archive for gVisor sandboxes: reading {LOCALE_DIR}: {e}");
            return None;
        }
    };
    match cache::obtain(templates, "locale", key, &build) {
        Ok(entry) => Some(LocaleArchive {
            dir: entry.tree().join("usr/lib/locale"),
            _entry: entry,
        }),
        Err(e) => {
            tracing::warn!("no locale archive for gVisor sandboxes (commands start slower): {e}");
            None
        }
    }
}

/// Builds `tree/usr/lib/locale/locale-archive`.
fn build(tree: &Path) -> std::io::Result<()> {
    let host = Path::new(LOCALE_DIR);
    let dir = tree.join("usr/lib/locale");
    fs::create_dir_all(&dir)?;
    if host.join(ARCHIVE).is_file() {
        fs::copy(host.join(ARCHIVE), dir.join(ARCHIVE))?;
    }
    let out = Command::new(LOCALEDEF)
        .arg(format!("--prefix={}", tree.display()))
        .args(["--add-to-archive", "--replace"])
        .args(compiled(host))
        .output()?;
    if !out.status.success() || !dir.join(ARCHIVE).is_file() {
        return Err(std::io::Error::other(format!(
            "localedef --add-to-archive: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built once: a second runtime finds the first one's archive, and the
    /// archive lists the host's locales.
    #[test]
    fn the_archive_is_built_once_and_holds_the_hosts_locales() {
        if compiled(Path::new(LOCALE_DIR)).is_empty() || fs::metadata(LOCALEDEF).is_err() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let a = obtain(dir.path()).expect("an archive");
        let b = obtain(dir.path()).expect("an archive");
        assert_eq!(a.dir, b.dir);
        let archive = a.dir.join(ARCHIVE);
        let tree = a.dir.ancestors().nth(3).unwrap();
        let listed = Command::new(LOCALEDEF)
            .arg(format!("--prefix={}", tree.display()))
            .arg("--list-archive")
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout).to_string();
        for d in compiled(Path::new(LOCALE_DIR)) {
            let name = d.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                listed.lines().any(|l| l == name),
                "{name} not in {listed:?}"
            );
        }
        assert!(archive.metadata().unwrap().len() > 0);
    }
}

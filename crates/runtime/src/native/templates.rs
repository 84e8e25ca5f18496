//! Host-side templates for the parts of every sandbox's tree that do not
//! change between sandboxes: the host image's `/etc` and `/dev`.
//!
//! Built once per host (and again when the host's `/etc` changes) in a
//! cache under the state directory that every Warden process shares (see
//! `cache.rs`), owned by host root, and bound read-only into each sandbox
//! as one mount each, instead of a dozen binds per sandbox: mounts are the
//! bulk of a sandbox's set-up time.

use crate::cache::{self, CacheError};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use warden_inside::setup::{DEVICES, OWN_FILES};

/// Harmless, read-only pieces of the host's /etc that programs expect.
/// Never the host's accounts, secrets, or configuration of its services.
pub const HOST_ETC: &[&str] = &[
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    // Debian's matplotlib reads its defaults through /etc.
    "matplotlibrc",
    "mime.types",
    "os-release",
    "protocols",
    "services",
    "ssl",
    "timezone",
];

/// Files every sandbox gets in /etc, whatever its image.
pub const OWN_ETC: &[(&str, &str)] = &[
    (
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\n\
         sandbox:x:1000:1000:sandbox:/scratch:/bin/sh\n\
         user:x:1001:1001:user:/home/user:/bin/bash\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    ),
    (
        "group",
        "root:x:0:\nsandbox:x:1000:\nuser:x:1001:\nnogroup:x:65534:\n",
    ),
    (
        "nsswitch.conf",
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
         protocols: files\nservices: files\n",
    ),
    (
        "resolv.conf",
        "# Warden: this sandbox has no network beyond loopback.\n",
    ),
];

/// Per-sandbox files (see [`PerSandbox`]).
pub const PER_SANDBOX_ETC: &[&str] = &["hosts", "hostname"];

/// Where the /etc template leaves a sandbox's own `hosts` and `hostname`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerSandbox {
    /// Empty placeholder files, for a backend to bind (or write) over.
    Placeholders,
    /// Symlinks to `/.warden/<name>` ([`OWN_FILES`]), which each native
    /// sandbox writes on its root tmpfs: two small files instead of two
    /// binds (four mount calls) per sandbox.
    Links,
}

/// Names in /etc that Warden always provides itself.
pub fn is_own_etc(name: &str) -> bool {
    OWN_ETC.iter().any(|(n, _)| *n == name)
        || PER_SANDBOX_ETC.contains(&name)
        || matches!(name, "shadow" | "gshadow" | "mtab")
}

/// The templates a runtime uses: paths into shared cache entries (see
/// `cache.rs`), which stay in place as long as this is alive.
#[derive(Debug)]
pub struct Templates {
    pub etc: PathBuf,
    pub dev: PathBuf,
    /// The cache directory they are in (directory images' /etc templates
    /// go there too, see [`obtain_image_etc`]).
    pub dir: PathBuf,
    _entries: Vec<cache::Entry>,
}

/// Only what any local user could read anyway: a directory or file the
/// host keeps from "others" (e.g. /etc/ssl/private) is not copied at all.
fn readable(md: &fs::Metadata) -> bool {
    let mode = md.permissions().mode();
    let ft = md.file_type();
    !((ft.is_dir() && mode & 0o005 != 0o005) || (ft.is_file() && mode & 0o004 == 0))
}

/// Copies `src` to `dst`: symlinks as symlinks, directories recursively,
/// regular files by content; anything else is skipped.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    if !readable(&md) {
        return Ok(());
    }
    if ft.is_symlink() {
        symlink(fs::read_link(src)?, dst)
    } else if ft.is_dir() {
        fs::create_dir(dst)?;
        fs::set_permissions(
            dst,
            fs::Permissions::from_mode(md.permissions().mode() & 0o755),
        )?;
        for ent in fs::read_dir(src)? {
            let ent = ent?;
            copy_tree(&ent.path(), &dst.join(ent.file_name()))?;
        }
        Ok(())
    } else if ft.is_file() {
        fs::copy(src, dst)?;
        // World-readable files only; anything else was not meant for us.
        let mode = md.permissions().mode() & 0o755;
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))
    } else {
        Ok(())
    }
}

/// Builds the /etc template at `dir` (which must not exist) from `source`
/// (the host's /etc).
pub fn build_etc(dir: &Path, source: &Path, per_sandbox: PerSandbox) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for name in HOST_ETC {
        let src = source.join(name);
        if fs::symlink_metadata(&src).is_ok() {
            copy_tree(&src, &dir.join(name))?;
        }
    }
    for name in PER_SANDBOX_ETC {
        match per_sandbox {
            PerSandbox::Placeholders => fs::write(dir.join(name), "")?,
            PerSandbox::Links => symlink(format!("../{OWN_FILES}/{name}"), dir.join(name))?,
        }
    }
    write_own_etc(dir)
}

/// Writes the /etc files every sandbox gets (accounts, name service,
/// resolver) and the `mtab` link into `dir`.
pub fn write_own_etc(dir: &Path) -> io::Result<()> {
    for (name, content) in OWN_ETC {
        fs::write(dir.join(name), content)?;
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o644))?;
    }
    symlink("../proc/self/mounts", dir.join("mtab"))
}

fn build_dev(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (name, major, minor) in DEVICES {
        let p = dir.join(name);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(*major, *minor),
        )?;
        // mknod honours the umask; the mode must be exact.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666))?;
    }
    for sub in ["pts", "shm"] {
        fs::create_dir(dir.join(sub))?;
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dir.join(name))?;
    }
    Ok(())
}

/// The templates under `state_dir`, built from the host's `/etc` unless an
/// up-to-date build is already there (see `cache.rs`).
pub fn prepare(state_dir: &Path, per_sandbox: PerSandbox) -> Result<Templates, CacheError> {
    prepare_from(state_dir, Path::new("/etc"), per_sandbox)
}

/// As [`prepare`], with `source` standing in for the host's `/etc`.
pub fn prepare_from(
    state_dir: &Path,
    source: &Path,
    per_sandbox: PerSandbox,
) -> Result<Templates, CacheError> {
    let dir = state_dir.join("templates");
    let etc = obtain_etc(&dir, source, per_sandbox)?;
    let dev = cache::obtain(&dir, "dev", dev_key(), &build_dev)?;
    Ok(Templates {
        etc: etc.tree(),
        dev: dev.tree(),
        dir,
        _entries: vec![etc, dev],
    })
}

/// The /etc template alone, as a cache entry under `dir`.
pub fn obtain_etc(
    dir: &Path,
    source: &Path,
    per_sandbox: PerSandbox,
) -> Result<cache::Entry, CacheError> {
    let recipe = etc_recipe(source, per_sandbox);
    let parts: Vec<&[u8]> = recipe.iter().map(Vec::as_slice).collect();
    let key = cache::memoized(dir, "etc", &parts, |key| hash_etc(key, source)).map_err(|e| {
        CacheError {
            what: "read",
            path: source.to_path_buf(),
            source: e,
        }
    })?;
    cache::obtain(dir, "etc", key, &|tree| {
        build_etc(tree, source, per_sandbox)
    })
}

fn dev_key() -> Option<String> {
    let mut key = cache::Key::new("dev");
    for (name, major, minor) in DEVICES {
        key.text(format!("{name} {major} {minor}").as_bytes());
    }
    key.finish()
}

/// What [`build_etc`] puts in an /etc template besides the host's files:
/// where it reads them, which names it takes, and Warden's own files.
pub fn etc_recipe(source: &Path, per_sandbox: PerSandbox) -> Vec<Vec<u8>> {
    let mut recipe = vec![
        source.as_os_str().as_encoded_bytes().to_vec(),
        format!("{per_sandbox:?}").into_bytes(),
    ];
    for (name, content) in OWN_ETC {
        recipe.push(name.as_bytes().to_vec());
        recipe.push(content.as_bytes().to_vec());
    }
    for name in HOST_ETC {
        recipe.push(name.as_bytes().to_vec());
    }
    recipe
}

/// Adds to `key` the version of everything [`build_etc`] copies from
/// `source`: type, mode, size, times and inode of each file and directory.
pub fn hash_etc(key: &mut cache::Key, source: &Path) -> io::Result<()> {
    for name in HOST_ETC {
        let src = source.join(name);
        key.text(name.as_bytes());
        match fs::symlink_metadata(&src) {
            Ok(md) => hash_tree(key, &src, &md)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => key.missing(&src),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// [`copy_tree`]'s walk, reading metadata only. A symlink inside a
/// directory needs no stat of its own: it cannot be changed in place, and
/// replacing or removing it changes its directory's times, which are in the
/// key. A regular file can change in place, so each is stat'ed.
pub(crate) fn hash_tree(key: &mut cache::Key, src: &Path, md: &fs::Metadata) -> io::Result<()> {
    key.file(src, md);
    if !md.is_dir() || !readable(md) {
        return Ok(());
    }
    let mut ents: Vec<_> = fs::read_dir(src)?.collect::<io::Result<_>>()?;
    ents.sort_by_key(|e| e.file_name());
    for ent in ents {
        key.text(ent.file_name().as_encoded_bytes());
        if ent.file_type()?.is_symlink() {
            key.text(b"l");
        } else {
            hash_tree(key, &ent.path(), &fs::symlink_metadata(ent.path())?)?;
        }
    }
    Ok(())
}

/// The names of a directory image's `/etc` (at `source`) its template
/// takes: all but those Warden provides itself, and any not valid UTF-8
/// (which the bind-per-entry layout before this template skipped too).
fn image_etc_names(source: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let rd = match fs::read_dir(source) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for ent in rd {
        let name = ent?.file_name();
        if name.to_str().is_some_and(|n| !is_own_etc(n)) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Builds a directory image's /etc template at `dir` from the image's
/// `/etc` at `source`: its own files (what any user may read of them, as
/// for the host's), Warden's accounts and name files in place of the
/// image's, and `hosts` and `hostname` linking to each sandbox's own.
pub fn build_image_etc(dir: &Path, source: &Path) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for name in image_etc_names(source)? {
        copy_tree(&source.join(&name), &dir.join(&name))?;
    }
    for name in PER_SANDBOX_ETC {
        symlink(format!("../{OWN_FILES}/{name}"), dir.join(name))?;
    }
    write_own_etc(dir)
}

/// The /etc template of the directory image at `image`, as a cache entry
/// under `dir` (built there unless an up-to-date one is): one read-only
/// bind per sandbox instead of one (and a remount) per entry of the
/// image's /etc. Each image has entries of its own kind, so two images
/// never evict each other's; a sandbox holds its entry while it runs.
pub fn obtain_image_etc(dir: &Path, image: &Path) -> Result<cache::Entry, CacheError> {
    let source = image.join("etc");
    let digest = {
        let mut k = cache::Key::new("image");
        k.text(image.as_os_str().as_encoded_bytes());
        k.finish().unwrap_or_default()
    };
    let kind = format!("etc-{}", &digest[..digest.len().min(16)]);
    let mut recipe = vec![
        b"image".to_vec(),
        source.as_os_str().as_encoded_bytes().to_vec(),
    ];
    for (name, content) in OWN_ETC {
        recipe.push(name.as_bytes().to_vec());
        recipe.push(content.as_bytes().to_vec());
    }
    for name in PER_SANDBOX_ETC {
        recipe.push(name.as_bytes().to_vec());
    }
    let parts: Vec<&[u8]> = recipe.iter().map(Vec::as_slice).collect();
    let walked = cache::memoized(dir, &kind, &parts, |key| {
        // The directory's own times stand for its list of names.
        match fs::symlink_metadata(&source) {
            Ok(md) => key.file(&source, &md),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                key.missing(&source);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        for name in image_etc_names(&source)? {
            let src = source.join(&name);
            key.text(name.as_encoded_bytes());
            hash_tree(key, &src, &fs::symlink_metadata(&src)?)?;
        }
        Ok(())
    });
    let key = walked.map_err(|e| CacheError {
        what: "read",
        path: source.clone(),
        source: e,
    })?;
    cache::obtain(dir, &kind, key, &|tree| build_image_etc(tree, &source))
}

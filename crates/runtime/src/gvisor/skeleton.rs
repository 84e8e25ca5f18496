//! The root directory of a gVisor sandbox: a skeleton of mount points and
//! the image's top-level symlinks, owned by host root and read-only to the
//! sandbox. Everything with content is mounted on it by the gofer, in the
//! gofer's own mount namespace, so the skeleton itself never changes.
//!
//! That makes one skeleton shareable: sandboxes of the host image without
//! extra mounts (the common case) all use one built at runtime start instead
//! of a dozen fresh directories each. Removing directories is what a bundle
//! costs most at teardown (on ext4 an `rmdir` takes milliseconds), so only
//! other sandboxes get a skeleton of their own, inside their bundle.

use super::{io, GvisorError};
use crate::cache;
use crate::native::templates::{self, PerSandbox};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use warden_spec::{Image, SandboxSpec};

/// Directories every skeleton has, whatever the image: the layout's own
/// mount points, and the homes some programs expect to exist.
const LAYOUT: &[&str] = &[
    "proc",
    "dev",
    "sys",
    "etc",
    "root",
    "home",
    "run",
    "input",
    ".warden",
    "output",
    "scratch",
    "tmp",
    // The `user` account's home (a tmpfs, for sandboxes that run as it).
    "home/user",
];

/// The init binary's mount point (see `bundle::INIT_TARGET`).
const INIT_POINT: &str = ".warden/warden-init";

/// A top-level entry of the image, as the skeleton shows it.
pub enum Kind {
    /// Copied into the skeleton as a symlink (e.g. merged-/usr's `bin`).
    Link(PathBuf),
    /// Bound read-only from the image over a mount point.
    Dir,
    File,
}

pub struct Entry {
    pub name: OsString,
    pub kind: Kind,
}

/// The image's directory and its top-level entries: the host's /usr and
/// its merged-/usr symlinks (or real directories on older hosts), or each
/// entry of a root-filesystem directory except the layout's own names and
/// dot-files.
pub fn image_entries(img: &Image) -> Result<(PathBuf, Vec<Entry>), GvisorError> {
    let (src_dir, names): (PathBuf, Vec<OsString>) = match img {
        Image::Host => (
            PathBuf::from("/"),
            ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"]
                .iter()
                .map(Into::into)
                .collect(),
        ),
        Image::Dir(d) => {
            let dir = PathBuf::from(d);
            let rd = fs::read_dir(&dir).map_err(io("read image", &dir))?;
            let mut names = Vec::new();
            for ent in rd {
                let name = ent.map_err(io("read image", &dir))?.file_name();
                let own = LAYOUT.iter().any(|o| name == *o);
                if !own && !name.as_encoded_bytes().starts_with(b".") {
                    names.push(name);
                }
            }
            (dir, names)
        }
    };
    let mut entries = Vec::new();
    for name in names {
        let src = src_dir.join(&name);
        let Ok(md) = fs::symlink_metadata(&src) else {
            continue;
        };
        let kind = if md.file_type().is_symlink() {
            Kind::Link(fs::read_link(&src).map_err(io("readlink", &src))?)
        } else if md.is_dir() {
            Kind::Dir
        } else if md.is_file() {
            Kind::File
        } else {
            continue;
        };
        entries.push(Entry { name, kind });
    }
    Ok((src_dir, entries))
}

/// Whether `spec` can use the shared skeleton: the host image, and no mount
/// points beyond the layout's.
pub fn fits_shared(spec: &SandboxSpec) -> bool {
    spec.image == Image::Host && spec.mounts.is_empty()
}

/// Builds the skeleton for `spec` at `root` (which must not exist).
pub fn build(root: &Path, spec: &SandboxSpec, entries: &[Entry]) -> Result<(), GvisorError> {
    fs::create_dir(root).map_err(io("mkdir", root))?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(io("chmod", root))?;
    for dir in LAYOUT {
        mount_point(root, Path::new(dir), false)?;
    }
    let home = root.join("root");
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).map_err(io("chmod", &home))?;
    for e in entries {
        let dst = root.join(&e.name);
        match &e.kind {
            Kind::Link(target) => symlink(target, &dst).map_err(io("symlink", &dst))?,
            Kind::Dir => mount_point(root, Path::new(&e.name), false)?,
            Kind::File => mount_point(root, Path::new(&e.name), true)?,
        }
    }
    for m in &spec.mounts {
        let rel = Path::new(m.target.trim_start_matches('/'));
        let is_file = fs::metadata(&m.source)
            .map(|md| md.is_file())
            .map_err(io("mount source", Path::new(&m.source)))?;
        mount_point(root, rel, is_file)?;
    }
    mount_point(root, Path::new(INIT_POINT), true)
}

/// The runtime's shared skeleton, and what it holds besides mount points.
#[derive(Debug)]
pub struct Shared {
    /// The cache entry holding it, if it came from the cache: kept (and
    /// locked against collection) while this runtime may use it.
    _entry: Option<cache::Entry>,
    pub root: PathBuf,
    /// /etc is the host image's template itself (moved in), with name files
    /// for this hostname (the default one).
    pub hostname: String,
    /// The init binary is hard-linked in at `.warden/warden-init`, so it needs no
    /// mount of its own (false where the link cannot be made, e.g. across
    /// filesystems).
    pub has_init: bool,
}

/// Builds the shared skeleton (the host image, no extra mounts) at `root`.
/// Whatever can be part of the root directory is, rather than a mount of
/// its own: each mount is a gofer connection the sandbox sets up at start.
/// `etc_template` is moved to `root/etc`; the caller uses it from there.
pub fn build_shared(root: &Path, etc_template: &Path, init: &Path) -> Result<Shared, GvisorError> {
    let (_, entries) = image_entries(&Image::Host)?;
    let spec = SandboxSpec::default();
    build(root, &spec, &entries)?;
    let etc = root.join("etc");
    fs::remove_dir(&etc).map_err(io("rmdir", &etc))?;
    fs::rename(etc_template, &etc).map_err(io("move the /etc template", &etc))?;
    for (name, text) in warden_inside::setup::name_files(&spec.hostname) {
        let path = etc.join(name);
        fs::write(&path, text).map_err(io("write", &path))?;
    }
    // A hard link is the very inode a bind would show, read-only to the
    // sandbox all the same (the root is mounted read-only).
    let point = root.join(INIT_POINT);
    let has_init = fs::remove_file(&point).is_ok() && fs::hard_link(init, &point).is_ok();
    if !has_init && fs::symlink_metadata(&point).is_err() {
        fs::File::create(&point).map_err(io("create mount point", &point))?;
    }
    Ok(Shared {
        _entry: None,
        root: root.to_path_buf(),
        hostname: spec.hostname,
        has_init,
    })
}

/// The shared skeleton for `init` from the cache in `dir`, built there
/// first unless an up-to-date one is (see `cache.rs`): it depends only on
/// the host's /etc, the host image's top-level entries and the init
/// binary, all of them in its key.
pub fn obtain_shared(dir: &Path, init: &Path) -> Result<Shared, crate::RuntimeError> {
    let spec = SandboxSpec::default();
    let etc = Path::new("/etc");
    let mut recipe = templates::etc_recipe(etc, PerSandbox::Placeholders);
    recipe.extend(LAYOUT.iter().map(|d| d.as_bytes().to_vec()));
    for (name, text) in warden_inside::setup::name_files(&spec.hostname) {
        recipe.push(name.as_bytes().to_vec());
        recipe.push(text.as_bytes().to_vec());
    }
    let parts: Vec<&[u8]> = recipe.iter().map(Vec::as_slice).collect();
    let init_md = fs::metadata(init).map_err(io("stat", init))?;
    let key = cache::memoized(dir, "root", &parts, |key| {
        templates::hash_etc(key, etc)?;
        key.binary(init, &init_md);
        // The host image's top-level names, kinds and link targets: any
        // change to them changes the root directory's times.
        let root = Path::new("/");
        key.file(root, &fs::symlink_metadata(root)?);
        let (_, entries) = image_entries(&Image::Host).map_err(std::io::Error::other)?;
        for e in &entries {
            key.text(e.name.as_encoded_bytes());
            match &e.kind {
                Kind::Link(t) => key.text(t.as_os_str().as_encoded_bytes()),
                Kind::Dir => key.text(b"d"),
                Kind::File => key.text(b"f"),
            }
        }
        Ok(())
    })
    .map_err(io("read", etc))?;
    let entry = cache::obtain(dir, "root", key, &|tree| {
        let etc_src = tree.with_file_name("etc-source");
        templates::build_etc(&etc_src, etc, PerSandbox::Placeholders)?;
        build_shared(tree, &etc_src, init).map_err(std::io::Error::other)?;
        Ok(())
    })?;
    let root = entry.tree();
    // Linked in when it was built, unless the state directory is on another
    // file system than the init (then the bundle binds it).
    let same = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    Ok(Shared {
        has_init: same(&root.join(INIT_POINT), init),
        root,
        hostname: spec.hostname,
        _entry: Some(entry),
    })
}

/// Creates `rel` (a relative path) under `root` as a directory, or as an
/// empty file when `file`, refusing to pass through a symlink so a mount
/// target can never be created outside the skeleton.
pub fn mount_point(root: &Path, rel: &Path, file: bool) -> Result<(), GvisorError> {
    let mut p = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        let Component::Normal(name) = c else { continue };
        p.push(name);
        let last = i + 1 == parts.len();
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                return Err(GvisorError::MountTarget(format!(
                    "/{} passes through a symlink of the image",
                    rel.display()
                )))
            }
            Ok(_) => {}
            Err(_) if last && file => {
                fs::File::create(&p).map_err(io("create mount point", &p))?;
            }
            Err(_) => fs::create_dir(&p).map_err(io("create mount point", &p))?,
        }
    }
    Ok(())
}

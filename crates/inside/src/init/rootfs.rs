//! Building the sandbox's root filesystem, inside its own mount namespace.
//!
//! Everything here runs in the init (PID 1 of the sandbox, root of its user
//! namespace) before `pivot_root`, while the host's tree is still visible as
//! the source of binds. Nothing is mounted in the host's namespace.

use crate::setup::{
    inodes_for, name_files, NativeSetup, MAX_INOTIFY_INSTANCES, MAX_INOTIFY_WATCHES, MAX_PTYS,
    OWN_FILES,
};
use rustix::mount::{mount, mount_bind, mount_remount, MountFlags};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use warden_spec::Image;

#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct MountError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

pub type Result<T> = std::result::Result<T, MountError>;

fn err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> MountError + 'a {
    move |source| MountError {
        what,
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn rerr<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(rustix::io::Errno) -> MountError + 'a {
    move |e| MountError {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Flags of the mount holding `path` that a bind remount in a user namespace
/// must keep (the kernel refuses to clear "locked" flags).
fn locked_flags(path: &Path) -> MountFlags {
    let Ok(st) = rustix::fs::statvfs(path) else {
        return MountFlags::empty();
    };
    use rustix::fs::StatVfsMountFlags as F;
    let mut f = MountFlags::empty();
    for (from, to) in [
        (F::NOSUID, MountFlags::NOSUID),
        (F::NODEV, MountFlags::NODEV),
        (F::NOEXEC, MountFlags::NOEXEC),
        (F::NOATIME, MountFlags::NOATIME),
        (F::NODIRATIME, MountFlags::NODIRATIME),
        (F::RELATIME, MountFlags::RELATIME),
    ] {
        if st.f_flag.contains(from) {
            f |= to;
        }
    }
    f
}

/// Binds `src` (a host path) onto `dst`, creating the mount point, then
/// remounts it nosuid, nodev and (if `ro`) read-only.
pub fn bind(src: &Path, dst: &Path, ro: bool) -> Result<()> {
    let md = fs::metadata(src).map_err(err("bind source", src))?;
    if md.is_dir() {
        fs::create_dir_all(dst).map_err(err("mkdir", dst))?;
    } else {
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).map_err(err("mkdir", p))?;
        }
        // An existing file (e.g. a template's placeholder) is the mount point.
        if fs::symlink_metadata(dst).is_err() {
            fs::File::create(dst).map_err(err("create mount point", dst))?;
        }
    }
    mount_bind(src, dst).map_err(rerr("bind", dst))?;
    let mut flags = MountFlags::BIND | MountFlags::NOSUID | locked_flags(src);
    if md.is_dir() || md.is_file() {
        flags |= MountFlags::NODEV;
    }
    if ro {
        flags |= MountFlags::RDONLY;
    }
    mount_remount(dst, flags, c"").map_err(rerr("remount", dst))
}

/// Attaches the detached mount tree `tree` (a `/proc/self/fd/N` path the
/// host sent: an idmapped copy of a host directory, see the runtime's
/// `native/handles.rs`) on the directory `at`.
fn attach_tree(tree: &Path, at: &Path) -> Result<()> {
    use rustix::mount::{move_mount, MoveMountFlags};
    move_mount(
        rustix::fs::CWD,
        tree,
        rustix::fs::CWD,
        at,
        MoveMountFlags::MOVE_MOUNT_F_SYMLINKS | MoveMountFlags::MOVE_MOUNT_T_SYMLINKS,
    )
    .map_err(rerr("attach idmapped tree", at))
}

/// A tmpfs with the given options.
pub fn tmpfs(dst: &Path, flags: MountFlags, opts: &str) -> Result<()> {
    fs::create_dir_all(dst).map_err(err("mkdir", dst))?;
    let data = std::ffi::CString::new(opts).map_err(|_| MountError {
        what: "tmpfs options",
        path: dst.into(),
        source: io::ErrorKind::InvalidInput.into(),
    })?;
    mount("tmpfs", dst, "tmpfs", flags, data.as_c_str()).map_err(rerr("mount tmpfs", dst))
}

/// A tmpfs the sandbox writes its files in (/output, /scratch, /tmp, its
/// home), with the given options and huge pages for what fits them: a file
/// is given 2 MiB pages where they lie wholly within its size
/// (`huge=within_size`), so a small file costs what it did and a large one
/// is written (and restored at a resume) in about half the kernel time.
/// Where the kernel has no transparent huge pages (the option is refused),
/// without them.
pub fn place_tmpfs(dst: &Path, flags: MountFlags, opts: &str) -> Result<()> {
    let (key, value) = HUGE_PAGES;
    match tmpfs(dst, flags, &format!("{opts},{key}={value}")) {
        Err(e) if e.source.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
            tmpfs(dst, flags, opts)
        }
        other => other,
    }
}

/// See [`place_tmpfs`].
const HUGE_PAGES: (&str, &str) = ("huge", "within_size");

/// The sandbox's root: a tmpfs made with the new mount API and attached on
/// `staging`, returned as a descriptor of its root directory. Mounting on
/// `staging` by name and then using the name would not do: `staging` may
/// be `/proc/self/fd/N` (see `handles.rs`), and a magic link leads to the
/// directory *under* anything mounted on it later.
///
/// A writable root (`disk_bytes` given) is as large as the disk limit and
/// holds the upper layers of the image's overlays (see [`Layers`]).
pub fn root_tmpfs(staging: &Path, disk_bytes: Option<u64>) -> Result<std::os::fd::OwnedFd> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags,
        FsOpenFlags, MountAttrFlags, MoveMountFlags,
    };
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).map_err(rerr("fsopen tmpfs", staging))?;
    let (size, inodes) = match disk_bytes {
        Some(b) => (b.to_string(), inodes_for(b).to_string()),
        None => ("4m".into(), "4096".into()),
    };
    for (key, value) in [("mode", "0755"), ("size", &size), ("nr_inodes", &inodes)] {
        fsconfig_set_string(&fs, key, value).map_err(rerr("configure root tmpfs", staging))?;
    }
    // A writable root's upper layers hold what the sandbox writes there:
    // huge pages as for its other places (see [`place_tmpfs`]), where the
    // kernel has them (refused here, at once, where it does not).
    if disk_bytes.is_some() {
        let (key, value) = HUGE_PAGES;
        let _ = fsconfig_set_string(&fs, key, value);
    }
    fsconfig_create(&fs).map_err(rerr("create root tmpfs", staging))?;
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(rerr("fsmount root tmpfs", staging))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        staging,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_SYMLINKS,
    )
    .map_err(rerr("attach root tmpfs", staging))?;
    Ok(mnt)
}

/// Copies a symlink (never following it).
fn copy_link(src: &Path, dst: &Path) -> Result<()> {
    let target = fs::read_link(src).map_err(err("readlink", src))?;
    symlink(&target, dst).map_err(err("symlink", dst))
}

/// Re-creates `src` at `dst`: a symlink as a symlink, a directory as an
/// overlay when the root is writable, anything else as a read-only bind.
fn pass_through(src: &Path, dst: &Path, layers: Option<&Layers>) -> Result<()> {
    let md = fs::symlink_metadata(src).map_err(err("stat", src))?;
    if md.file_type().is_symlink() {
        copy_link(src, dst)
    } else if let (true, Some(layers)) = (md.is_dir(), layers) {
        layers.overlay(src, dst)
    } else if md.is_dir() || md.is_file() {
        bind(src, dst, true)
    } else {
        Ok(())
    }
}

/// Where a writable root keeps its overlays' upper and work directories:
/// on the root tmpfs (so they count in its size, the disk limit) under a
/// directory only the sandbox's root may enter. The sandbox sees their
/// contents only through the overlays.
pub struct Layers {
    dir: PathBuf,
    made: std::cell::Cell<u32>,
    /// Where the host's idmapped trees are attached until the overlays
    /// hold their own references (see [`Layers::attach`]).
    attached: std::cell::RefCell<Vec<PathBuf>>,
}

/// Bytes overlay's option syntax has no escape for.
const UNSPEAKABLE: &[u8] = b",:\\\n";

impl Layers {
    pub fn new(root: &Path) -> Result<Layers> {
        let dir = root.join(OWN_FILES).join("layers");
        fs::create_dir_all(&dir).map_err(err("mkdir", &dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(err("chmod", &dir))?;
        Ok(Layers {
            dir,
            made: std::cell::Cell::new(0),
            attached: Default::default(),
        })
    }

    fn next(&self) -> u32 {
        let n = self.made.get();
        self.made.set(n + 1);
        n
    }

    /// Attaches the detached tree the host sent as `tree` (a
    /// `/proc/self/fd/N` path; an idmapped copy of a host directory, see
    /// the runtime's `native/handles.rs`) in the sandbox's own namespace,
    /// where an overlay may use it as a lower layer, and returns where.
    pub fn attach(&self, tree: &Path) -> Result<PathBuf> {
        let at = self.dir.join(format!("{}.lower", self.next()));
        fs::create_dir(&at).map_err(err("mkdir", &at))?;
        attach_tree(tree, &at)?;
        self.attached.borrow_mut().push(at.clone());
        Ok(at)
    }

    /// Detaches what [`Layers::attach`] attached: the overlays keep their
    /// own private copies, and the sandbox sees the image only through
    /// them.
    pub fn detach_lowers(&self) -> Result<()> {
        for at in self.attached.borrow_mut().drain(..) {
            rustix::mount::unmount(&at, rustix::mount::UnmountFlags::DETACH)
                .map_err(rerr("detach idmapped tree", &at))?;
            fs::remove_dir(&at).map_err(err("rmdir", &at))?;
        }
        Ok(())
    }

    /// Mounts an overlay of the read-only `lower` (a host directory: the
    /// image's, or the /etc template) with a fresh upper layer on `dst`,
    /// nosuid and nodev. `userxattr`: an overlay mounted in a user
    /// namespace keeps its own metadata in `user.overlay.*` attributes.
    pub fn overlay(&self, lower: &Path, dst: &Path) -> Result<()> {
        let n = self.next();
        let (upper, work) = (
            self.dir.join(format!("{n}.upper")),
            self.dir.join(format!("{n}.work")),
        );
        for d in [&upper, &work, dst] {
            fs::create_dir_all(d).map_err(err("mkdir", d))?;
        }
        // The merged root directory shows the upper one's mode.
        let md = fs::metadata(lower).map_err(err("overlay lower", lower))?;
        fs::set_permissions(
            &upper,
            fs::Permissions::from_mode(md.permissions().mode() & 0o7777),
        )
        .map_err(err("chmod", &upper))?;
        let paths = [lower, upper.as_path(), work.as_path()];
        if let Some(bad) = paths.iter().find(|p| {
            p.as_os_str()
                .as_encoded_bytes()
                .iter()
                .any(|b| UNSPEAKABLE.contains(b))
        }) {
            return Err(MountError {
                what: "overlay of a path holding ',', ':', '\\' or a newline",
                path: bad.to_path_buf(),
                source: io::ErrorKind::InvalidInput.into(),
            });
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            lower.display(),
            upper.display(),
            work.display()
        );
        let data = std::ffi::CString::new(opts).map_err(|_| MountError {
            what: "overlay options",
            path: dst.into(),
            source: io::ErrorKind::InvalidInput.into(),
        })?;
        mount(
            "overlay",
            dst,
            "overlay",
            MountFlags::NOSUID | MountFlags::NODEV,
            data.as_c_str(),
        )
        .map_err(rerr("mount overlay", dst))
    }
}

/// Top-level names the standard layout provides itself.
const OWN_TOP: &[&str] = &[
    "proc", "dev", "sys", "etc", "tmp", "input", "output", "scratch", "run", "home", "root",
];

/// The image: the host's /usr, or a root-filesystem directory; its
/// directories overlaid with layers of their own when the root is writable
/// (`usr`: the idmapped /usr the host sent for that).
pub fn image(root: &Path, image: &Image, usr: Option<&str>, layers: Option<&Layers>) -> Result<()> {
    match image {
        Image::Host => {
            let usr = match (layers, usr) {
                (Some(l), Some(tree)) => l.attach(Path::new(tree))?,
                _ => PathBuf::from("/usr"),
            };
            pass_through(&usr, &root.join("usr"), layers)?;
            // Merged-/usr symlinks, or the real directories on older hosts.
            for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
                let src = Path::new("/").join(name);
                if fs::symlink_metadata(&src).is_ok() {
                    pass_through(&src, &root.join(name), layers)?;
                }
            }
            Ok(())
        }
        Image::Dir(dir) => {
            let attached;
            let dir = match layers {
                Some(l) => {
                    attached = l.attach(Path::new(dir))?;
                    attached.as_path()
                }
                None => Path::new(dir),
            };
            let rd = fs::read_dir(dir).map_err(err("read image", dir))?;
            for ent in rd {
                let ent = ent.map_err(err("read image", dir))?;
                let name = ent.file_name();
                // Hidden top-level entries are the image's own metadata
                // (e.g. `.warden-image.json`), not part of its tree.
                if OWN_TOP.iter().any(|o| name == *o) || name.as_encoded_bytes().starts_with(b".") {
                    continue;
                }
                pass_through(&ent.path(), &root.join(&name), layers)?;
            }
            Ok(())
        }
    }
}

fn write(path: &Path, content: &str) -> Result<()> {
    fs::write(path, content).map_err(err("write", path))
}

/// Writes `name` into the root tmpfs's own directory, where the host
/// image's /etc template links to it (see the runtime's
/// `templates::PerSandbox::Links`); read-only once the root is remounted so.
pub(super) fn write_own_file(root: &Path, name: &str, content: &str) -> Result<()> {
    let own = root.join(OWN_FILES);
    fs::create_dir_all(&own).map_err(err("mkdir", &own))?;
    write(&own.join(name), content)
}

/// /etc: the prepared template of the sandbox's image (for the host image
/// Warden's account and name files plus harmless pieces of the host's
/// /etc, never its secrets; for a directory image the image's own /etc
/// with Warden's account and name files in place of its own), bound
/// read-only in one go, its `hosts` and `hostname` linking to files on the
/// root tmpfs that carry this sandbox's hostname.
pub fn etc(root: &Path, setup: &NativeSetup, layers: Option<&Layers>) -> Result<()> {
    let template = Path::new(&setup.etc_template);
    match layers {
        Some(layers) => layers.overlay(&layers.attach(template)?, &root.join("etc"))?,
        None => bind(template, &root.join("etc"), true)?,
    }
    for (name, content) in name_files(&setup.hostname) {
        write_own_file(root, name, &content)?;
    }
    Ok(())
}

/// A minimal /dev: the prepared template (null, zero, full, random,
/// urandom, tty and the usual symlinks; made on the host, since mknod is
/// impossible in a user namespace) with a private devpts and /dev/shm.
pub fn dev(root: &Path, template: &Path, shm_bytes: u64) -> Result<()> {
    let dev = root.join("dev");
    fs::create_dir(&dev).map_err(err("mkdir", &dev))?;
    mount_bind(template, &dev).map_err(rerr("bind", &dev))?;
    let pts = dev.join("pts");
    let opts = std::ffi::CString::new(format!(
        "newinstance,ptmxmode=0666,mode=0620,max={MAX_PTYS}"
    ))
    .map_err(|_| MountError {
        what: "devpts options",
        path: pts.clone(),
        source: io::ErrorKind::InvalidInput.into(),
    })?;
    mount(
        "devpts",
        &pts,
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        opts.as_c_str(),
    )
    .map_err(rerr("mount devpts", &pts))?;
    tmpfs(
        &dev.join("shm"),
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        &format!(
            "mode=1777,size={shm_bytes},nr_inodes={}",
            inodes_for(shm_bytes)
        ),
    )?;
    // Read-only, but not nodev: the device nodes must open.
    let flags = MountFlags::BIND
        | MountFlags::RDONLY
        | MountFlags::NOSUID
        | MountFlags::NOEXEC
        | locked_flags(template);
    mount_remount(&dev, flags, c"").map_err(rerr("remount /dev read-only", &dev))
}

/// A fresh /proc for the sandbox's PID namespace, with the parts that could
/// reconfigure the kernel made read-only on top of their permission checks.
pub fn proc(root: &Path) -> Result<()> {
    let p = root.join("proc");
    fs::create_dir_all(&p).map_err(err("mkdir", &p))?;
    mount(
        "proc",
        &p,
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(rerr("mount proc", &p))?;
    // While /proc/sys is still writable (the init is root of the sandbox's
    // user namespace, whose values these are).
    for (name, max) in [
        ("max_inotify_instances", MAX_INOTIFY_INSTANCES),
        ("max_inotify_watches", MAX_INOTIFY_WATCHES),
    ] {
        let f = p.join("sys/user").join(name);
        write(&f, &max.to_string())?;
    }
    for sub in ["sys", "sysrq-trigger", "irq", "bus"] {
        let s = p.join(sub);
        if s.exists() {
            bind_read_only(&s, &s)?;
        }
    }
    super::boot_id::mount_own(root)
}

/// Binds `source` at `target`, read-only, nosuid, nodev and noexec.
pub(super) fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    mount_bind(source, target).map_err(rerr("bind", target))?;
    mount_remount(
        target,
        MountFlags::BIND
            | MountFlags::RDONLY
            | MountFlags::NOSUID
            | MountFlags::NODEV
            | MountFlags::NOEXEC,
        c"",
    )
    .map_err(rerr("remount read-only", target))
}

/// /output, /scratch and /tmp: private tmpfs of `bytes` each, owned by the
/// sandbox user; /input read-only when given; then the spec's extra mounts.
pub fn layout(root: &Path, setup: &NativeSetup) -> Result<()> {
    let uid = setup.uid;
    let size = setup.disk_bytes;
    let flags = MountFlags::NOSUID | MountFlags::NODEV;
    let inodes = inodes_for(size);
    for (dir, mode) in [("output", "0755"), ("scratch", "0755"), ("tmp", "1777")] {
        place_tmpfs(
            &root.join(dir),
            flags,
            &format!("mode={mode},size={size},nr_inodes={inodes},uid={uid},gid={uid}"),
        )?;
    }
    match &setup.input_dir {
        Some(input) => bind(Path::new(input), &root.join("input"), true)?,
        None => {
            let p = root.join("input");
            fs::create_dir(&p).map_err(err("mkdir", &p))?;
        }
    }
    for empty in ["sys", "root", "home", "run"] {
        let p = root.join(empty);
        fs::create_dir_all(&p).map_err(err("mkdir", &p))?;
    }
    if let Some(home) = &setup.own_home {
        place_tmpfs(
            &root.join(home.trim_start_matches('/')),
            flags,
            &format!("mode=0750,size={size},nr_inodes={inodes},uid={uid},gid={uid}"),
        )?;
    }
    for m in &setup.mounts {
        let target = root.join(m.target.trim_start_matches('/'));
        if m.sandbox_ids {
            // An idmapped tree the host made, its flags (read-only,
            // nosuid, nodev) already set: attached as it is.
            fs::create_dir_all(&target).map_err(err("mkdir", &target))?;
            attach_tree(Path::new(&m.source), &target)?;
        } else {
            bind(Path::new(&m.source), &target, m.read_only)?;
        }
    }
    // Root's home is private to root-mode sandboxes, as on any system.
    let _ = fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700));
    Ok(())
}

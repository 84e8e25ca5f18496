//! Volumes on this node: each a file system of its own (ext4 in an image
//! file, attached through a loop device), so its size is a hard limit the
//! kernel enforces (a full volume answers `ENOSPC` inside the sandbox, and
//! nothing beyond it is touched) and its space is taken from the host's
//! disk when it is made (`fallocate`), never promised and missing later.
//!
//! Layout under the root (the server's `<data>/volumes`, mode 0700):
//! - `images/<id>.img`: the volume's bytes;
//! - `images/<id>.new`, `images/<id>.gone`: one being made, one being
//!   deleted (a crash leaves them; [`Volumes::open`] removes them);
//! - `mnt/<id>.<n>`: where it is mounted while sandboxes use it (nosuid,
//!   nodev; the directory is root's alone, so no host user reaches in). A
//!   fresh name for every mount, so the last holder's unmount of the
//!   previous one can never meet the next mount.
//!
//! A volume is mounted when the first sandbox that names it starts and
//! unmounted when the last one ends ([`Lease`]). Sandboxes see it through
//! a mount of their own: idmapped through their user namespace on the
//! native tier (`native/handles.rs`), so the ids on disk are the ids
//! inside, whatever host range a sandbox runs in.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

/// The smallest volume (ext4 with its journal needs a few MiB of its own).
pub const MIN_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the host's disk has no room for a volume of {bytes} bytes")]
    NoSpace { bytes: u64 },
    #[error("{tool}: {detail}")]
    Tool { tool: &'static str, detail: String },
    #[error("volume {0} has no image on this node")]
    Missing(String),
    #[error("volume {0} is in use by a sandbox")]
    InUse(String),
    #[error("volume {0} is still being made")]
    Making(String),
    #[error("volume size {0} is below the minimum of {MIN_BYTES} bytes")]
    TooSmall(u64),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.into(),
        source,
    }
}

/// A volume mounted on the host for the sandboxes that hold it. The last
/// holder's drop unmounts it.
#[derive(Debug)]
pub struct Mounted {
    id: String,
    dir: PathBuf,
}

impl Mounted {
    /// Where the volume is mounted on the host (a mount source for a
    /// sandbox's spec, never a path to read through).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Bytes in use and the file system's size.
    pub fn usage(&self) -> Option<(u64, u64)> {
        let st = rustix::fs::statvfs(&self.dir).ok()?;
        let size = st.f_blocks.saturating_mul(st.f_frsize);
        let free = st.f_bfree.saturating_mul(st.f_frsize);
        Some((size.saturating_sub(free), size))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        // Lazily: a sandbox's own idmapped copy may still be going away.
        // The loop device is freed with the last reference (autoclear).
        if let Err(e) = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH) {
            tracing::warn!(volume = %self.id, error = %e, "unmounting a volume");
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A sandbox's hold on a mounted volume.
pub type Lease = Arc<Mounted>;

/// The node's volumes.
pub struct Volumes {
    images: PathBuf,
    mnt: PathBuf,
    mounted: Mutex<HashMap<String, Weak<Mounted>>>,
    /// Numbers the mount points (see the module doc).
    mounts_made: std::sync::atomic::AtomicU64,
}

impl Volumes {
    /// Opens (making) the store at `root`, and clears what a killed process
    /// left: mounts of its volumes, half-made and half-deleted images.
    pub fn open(root: &Path) -> Result<Volumes, VolumeError> {
        use std::os::unix::fs::DirBuilderExt;
        let images = root.join("images");
        let mnt = root.join("mnt");
        for d in [root, &images, &mnt] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(io_err(d))?;
        }
        let mnt = fs::canonicalize(&mnt).map_err(io_err(&mnt))?;
        for stale in mounts_under(&mnt) {
            tracing::info!(path = %stale.display(), "detaching a volume a previous process left mounted");
            let _ = rustix::mount::unmount(&stale, rustix::mount::UnmountFlags::DETACH);
        }
        for entry in fs::read_dir(&mnt).map_err(io_err(&mnt))?.flatten() {
            let _ = fs::remove_dir(entry.path());
        }
        for entry in fs::read_dir(&images).map_err(io_err(&images))?.flatten() {
            let p = entry.path();
            if matches!(p.extension().and_then(|e| e.to_str()), Some("new" | "gone")) {
                let _ = fs::remove_file(&p);
            }
        }
        Ok(Volumes {
            images,
            mnt,
            mounted: Mutex::default(),
            mounts_made: Default::default(),
        })
    }

    fn image(&self, id: &str, ext: &str) -> PathBuf {
        self.images.join(format!("{id}.{ext}"))
    }

    /// Whether volume `id` has its image here.
    pub fn exists(&self, id: &str) -> bool {
        self.image(id, "img").is_file()
    }

    /// The ids of the images on this node (for the start-up sweep).
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(&self.images) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".img").map(String::from)
            })
            .collect()
    }

    /// Makes volume `id` of `bytes` (rounded down to 4 KiB): the space
    /// taken from the disk now, an empty file system whose root every
    /// sandbox user may write (sticky, as `/tmp`: one user cannot remove
    /// or replace another's files there, say a script root runs later). Made under another name and renamed, so a
    /// crash never leaves a half-made volume under its own.
    pub fn create(&self, id: &str, bytes: u64) -> Result<(), VolumeError> {
        if bytes < MIN_BYTES {
            return Err(VolumeError::TooSmall(bytes));
        }
        let bytes = bytes & !4095;
        let new = self.image(id, "new");
        let made = self.make(id, &new, bytes);
        if made.is_err() {
            let _ = fs::remove_file(&new);
        }
        made
    }

    fn make(&self, id: &str, new: &Path, bytes: u64) -> Result<(), VolumeError> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(new)
            .map_err(io_err(new))?;
        match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, bytes) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOSPC) => return Err(VolumeError::NoSpace { bytes }),
            // A file system without fallocate: a sparse file, still bounded.
            Err(rustix::io::Errno::OPNOTSUPP) => file.set_len(bytes).map_err(io_err(new))?,
            Err(e) => return Err(io_err(new)(e.into())),
        }
        drop(file);
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-E", "root_owner=0:0,nodiscard"])
            .args(["-L", "warden-volume"])
            .arg(new))?;
        // Its root open to every sandbox user (sticky), no lost+found.
        let dir = self.mnt.join(format!("{id}.new"));
        let _ = fs::create_dir(&dir);
        mount_image(new, &dir)?;
        let _ = fs::remove_dir(dir.join("lost+found"));
        let opened = {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777))
        };
        let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::empty());
        let _ = fs::remove_dir(&dir);
        opened.map_err(io_err(&dir))?;
        let img = self.image(id, "img");
        fs::rename(new, &img).map_err(io_err(&img))
    }

    /// A hold on volume `id`, mounting it if no sandbox holds it yet.
    pub fn lease(&self, id: &str) -> Result<Lease, VolumeError> {
        let mut mounted = self.mounted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = mounted.get(id).and_then(Weak::upgrade) {
            return Ok(m);
        }
        let img = self.image(id, "img");
        if !img.is_file() {
            return Err(VolumeError::Missing(id.into()));
        }
        let n = self
            .mounts_made
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.mnt.join(format!("{id}.{n}"));
        fs::create_dir(&dir).map_err(io_err(&dir))?;
        if let Err(e) = mount_image(&img, &dir) {
            let _ = fs::remove_dir(&dir);
            return Err(e);
        }
        let m = Arc::new(Mounted { id: id.into(), dir });
        mounted.insert(id.into(), Arc::downgrade(&m));
        mounted.retain(|_, w| w.strong_count() > 0);
        Ok(m)
    }

    /// Whether a sandbox holds volume `id`.
    pub fn in_use(&self, id: &str) -> bool {
        let mounted = self.mounted.lock().unwrap_or_else(|p| p.into_inner());
        mounted.get(id).is_some_and(|w| w.strong_count() > 0)
    }

    /// Bytes in use and the size of volume `id`: from the mounted file
    /// system while a sandbox holds it, else from its image's superblock
    /// (exact once unmounted).
    pub fn usage(&self, id: &str) -> Option<(u64, u64)> {
        let held = {
            let mounted = self.mounted.lock().unwrap_or_else(|p| p.into_inner());
            mounted.get(id).and_then(Weak::upgrade)
        };
        match held {
            Some(m) => m.usage(),
            None => superblock_usage(&self.image(id, "img")),
        }
    }

    /// First step of a delete: takes volume `id` out of use (no sandbox
    /// can mount it from now on); refused while a sandbox holds it. Then
    /// either [`Volumes::purge`] (its record is gone) or
    /// [`Volumes::restore`] (the record could not be deleted). Missing is
    /// not an error.
    pub fn retire(&self, id: &str) -> Result<(), VolumeError> {
        let mounted = self.mounted.lock().unwrap_or_else(|p| p.into_inner());
        if mounted.get(id).is_some_and(|w| w.strong_count() > 0) {
            return Err(VolumeError::InUse(id.into()));
        }
        // Deleted before it exists, it would appear afterwards with no
        // record and outside every quota.
        if self.image(id, "new").exists() {
            return Err(VolumeError::Making(id.into()));
        }
        let (img, gone) = (self.image(id, "img"), self.image(id, "gone"));
        match fs::rename(&img, &gone) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&img)(e)),
        }
    }

    /// Undoes [`Volumes::retire`].
    pub fn restore(&self, id: &str) {
        let _ = fs::rename(self.image(id, "gone"), self.image(id, "img"));
    }

    /// Frees a retired volume's bytes.
    pub fn purge(&self, id: &str) -> Result<(), VolumeError> {
        let gone = self.image(id, "gone");
        match fs::remove_file(&gone) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&gone)(e)),
            _ => Ok(()),
        }
    }

    /// Removes an image no record names (a crash between a record's
    /// removal and its image's).
    pub fn remove_orphan(&self, id: &str) -> Result<(), VolumeError> {
        self.retire(id)?;
        self.purge(id)
    }
}

/// Used and total bytes from an ext4 image's superblock (at byte 1024:
/// block count, free block count, block size).
fn superblock_usage(img: &Path) -> Option<(u64, u64)> {
    use std::io::{Read, Seek};
    let mut f = fs::File::open(img).ok()?;
    let mut sb = [0u8; 1024];
    f.seek(io::SeekFrom::Start(1024)).ok()?;
    f.read_exact(&mut sb).ok()?;
    let u32_at = |o: usize| u64::from(u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]));
    if sb[0x38..0x3a] != [0x53, 0xef] {
        return None; // not ext4's magic
    }
    let block = 1024u64.checked_shl(u32_at(0x18) as u32)?;
    let (blocks, free) = (u32_at(0x04), u32_at(0x0c));
    Some((blocks.saturating_sub(free) * block, blocks * block))
}

/// Mounts the ext4 image `img` on `dir` through a loop device that frees
/// itself at the unmount (mount(8)'s `loop` option sets autoclear).
/// `minixdf`: the size and free space it reports count the file system's
/// own structures, as the superblock's do (see [`superblock_usage`]), so
/// a volume's use reads the same mounted or not.
fn mount_image(img: &Path, dir: &Path) -> Result<(), VolumeError> {
    run(Command::new("mount")
        .args([
            "-t",
            "ext4",
            "-o",
            "loop,nosuid,nodev,noatime,errors=remount-ro,minixdf",
        ])
        .arg(img)
        .arg(dir))
}

fn run(cmd: &mut Command) -> Result<(), VolumeError> {
    let tool = match cmd.get_program().to_str() {
        Some("mkfs.ext4") => "mkfs.ext4",
        _ => "mount",
    };
    let out = cmd.output().map_err(|e| VolumeError::Tool {
        tool,
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if detail.contains("No space left") {
        return Err(VolumeError::NoSpace { bytes: 0 });
    }
    Err(VolumeError::Tool {
        tool,
        detail: format!("{} ({})", detail, out.status),
    })
}

/// Mount points at or under `dir` in this process's namespace.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect();
    // Deepest first.
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a temporary directory (kept while the first is), or
    /// None where the test cannot run (not root: no loop devices, mount).
    fn store() -> Option<(tempfile::TempDir, PathBuf, Volumes)> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (loop devices, mount)");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("volumes");
        let vols = Volumes::open(&root).unwrap();
        Some((tmp, root, vols))
    }

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }

    /// A volume is a file system of its own: made with its space taken,
    /// mounted once for all its holders, full at its size, unmounted with
    /// the last holder, kept across a reopen, refused to delete while held.
    #[test]
    fn volumes_are_bounded_shared_and_outlive_their_holders() {
        let Some((_tmp, root, vols)) = store() else {
            return;
        };
        assert!(matches!(
            vols.create("v1", 1 << 20),
            Err(VolumeError::TooSmall(_))
        ));
        vols.create("v1", MIN_BYTES).unwrap();
        assert!(vols.exists("v1"));
        assert_eq!(vols.ids(), vec!["v1".to_string()]);
        let a = vols.lease("v1").unwrap();
        let b = vols.lease("v1").unwrap();
        assert_eq!(a.dir(), b.dir());
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(a.dir()).unwrap().permissions().mode();
            assert_eq!(mode & 0o7777, 0o1777);
        }
        assert!(vols.in_use("v1"));
        assert!(matches!(vols.retire("v1"), Err(VolumeError::InUse(_))));
        let (used, size) = vols.usage("v1").unwrap();
        assert!(
            used < size / 4 && size > MIN_BYTES * 3 / 4,
            "{used} of {size}"
        );
        // Fill it: the write stops at the volume's size.
        let big = vec![7u8; 1 << 20];
        let mut written = 0u64;
        let mut f = fs::File::create(a.dir().join("fill")).unwrap();
        let full = loop {
            use std::io::Write;
            match f.write_all(&big) {
                Ok(()) => written += big.len() as u64,
                Err(e) => break e,
            }
            assert!(written <= MIN_BYTES, "wrote past the volume's size");
        };
        assert_eq!(full.raw_os_error(), Some(libc::ENOSPC));
        drop(f);
        fs::remove_file(a.dir().join("fill")).unwrap();
        fs::write(a.dir().join("keep"), b"kept").unwrap();
        let dir = a.dir().to_path_buf();
        drop((a, b));
        assert!(!vols.in_use("v1"));
        assert!(mounts_under(&root).is_empty(), "still mounted");
        assert!(!dir.exists());
        // The next mount is at a fresh place; a delete while it is being
        // made waits for it.
        let c = vols.lease("v1").unwrap();
        assert_ne!(c.dir(), dir.as_path());
        drop(c);
        fs::write(vols.image("v1", "new"), b"").unwrap();
        assert!(matches!(vols.retire("v1"), Err(VolumeError::Making(_))));
        fs::remove_file(vols.image("v1", "new")).unwrap();
        // A reopen (a restarted server) keeps the bytes.
        drop(vols);
        let vols = Volumes::open(&root).unwrap();
        let (used, size) = vols.usage("v1").unwrap();
        assert!(
            used < size / 4,
            "{used} of {size} after the fill was removed"
        );
        let c = vols.lease("v1").unwrap();
        assert_eq!(fs::read(c.dir().join("keep")).unwrap(), b"kept");
        drop(c);
        vols.retire("v1").unwrap();
        assert!(matches!(vols.lease("v1"), Err(VolumeError::Missing(_))));
        vols.restore("v1");
        assert!(vols.exists("v1"));
        vols.remove_orphan("v1").unwrap();
        assert!(!vols.exists("v1"));
        vols.retire("v1").unwrap();
        vols.purge("v1").unwrap();
    }

    /// What a killed process left mounted is detached at the next open.
    #[test]
    fn a_killed_process_mounts_are_cleared_at_open() {
        let Some((_tmp, root, vols)) = store() else {
            return;
        };
        vols.create("v2", MIN_BYTES).unwrap();
        let lease = vols.lease("v2").unwrap();
        // As if the process died: the lease is never dropped.
        std::mem::forget(lease);
        std::mem::forget(vols);
        let mnt = fs::canonicalize(root.join("mnt")).unwrap();
        assert_eq!(mounts_under(&mnt).len(), 1);
        let vols = Volumes::open(&root).unwrap();
        assert!(mounts_under(&mnt).is_empty());
        let again = vols.lease("v2").unwrap();
        drop(again);
        vols.remove_orphan("v2").unwrap();
    }
}

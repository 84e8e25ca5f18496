//! Built images' root directories on this node: a step's image is a copy
//! of the image below it (its files hard-linked, never written in place)
//! with what the step changed written over it.
//!
//! The copy ([`clone_tree`]) walks a tree the server made (an operator's
//! image or an earlier step's), never following a symlink. The layer is
//! written ([`Tree`]) through a `cap_std` directory handle, which cannot be
//! led outside the tree by `..`, absolute paths or symlinks a step planted:
//! what a sandbox made is data here, never a path the host follows. A
//! file is always replaced (unlinked, then made anew), so the inode the
//! image below shares through its hard link is never touched. Everything
//! written belongs to root; set-user-id and set-group-id bits are dropped.

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt as _};
use std::path::{Component, Path};

#[derive(Debug, thiserror::Error)]
pub enum ImageTreeError {
    #[error("{0}: not a path inside the image")]
    BadPath(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> ImageTreeError {
    let path = path.as_ref().display().to_string();
    move |source| ImageTreeError::Io { what, path, source }
}

/// What a copy made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cloned {
    pub dirs: u64,
    pub files: u64,
    pub links: u64,
    /// Device nodes, sockets and pipes, which are not copied.
    pub skipped: u64,
}

/// Copies the tree at `src` to `dst` (which must not exist): directories
/// made anew with their modes, owners and times, files hard-linked, links
/// made again. `src` and `dst` are on one file system.
pub fn clone_tree(src: &Path, dst: &Path) -> Result<Cloned, ImageTreeError> {
    let mut done = Cloned::default();
    let meta = fs::symlink_metadata(src).map_err(io_err("reading", src))?;
    fs::create_dir(dst).map_err(io_err("making", dst))?;
    clone_dir(src, dst, &meta, &mut done)?;
    Ok(done)
}

fn clone_dir(
    src: &Path,
    dst: &Path,
    meta: &fs::Metadata,
    done: &mut Cloned,
) -> Result<(), ImageTreeError> {
    done.dirs += 1;
    for entry in fs::read_dir(src).map_err(io_err("listing", src))? {
        let entry = entry.map_err(io_err("listing", src))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let m = fs::symlink_metadata(&from).map_err(io_err("reading", &from))?;
        let t = m.file_type();
        if t.is_dir() {
            fs::create_dir(&to).map_err(io_err("making", &to))?;
            clone_dir(&from, &to, &m, done)?;
        } else if t.is_file() {
            fs::hard_link(&from, &to).map_err(io_err("linking", &to))?;
            done.files += 1;
        } else if t.is_symlink() {
            let target = fs::read_link(&from).map_err(io_err("reading", &from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io_err("linking", &to))?;
            std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))
                .map_err(io_err("owning", &to))?;
            done.links += 1;
        } else {
            done.skipped += 1;
        }
    }
    // Last: a read-only directory is filled before it becomes read-only.
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .map_err(io_err("owning", dst))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err("setting the mode of", dst))?;
    set_times(dst, meta.mtime(), meta.mtime_nsec())
}

fn set_times(path: &Path, secs: i64, nsecs: i64) -> Result<(), ImageTreeError> {
    let t = timespec(secs, nsecs);
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("setting the times of", path)(e.into()))
}

fn timespec(secs: i64, nsecs: i64) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nsecs,
    }
}

/// A path in the sandbox (`/usr/local/bin/x`) as one relative to the
/// tree, every component an ordinary name.
pub fn relative(path: &str) -> Result<&str, ImageTreeError> {
    let rel = path.strip_prefix('/').unwrap_or(path);
    let ok = !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !rel.ends_with('/')
        && !rel.contains("//");
    if ok {
        Ok(rel)
    } else {
        Err(ImageTreeError::BadPath(path.escape_default().to_string()))
    }
}

/// Whether a directory whose name is `name` (unique: a retired root's
/// random name) is the source of a mount in any process's namespace: a
/// sandbox's bind of an image's directory keeps its source's path in
/// mountinfo's fourth field, and follows renames.
pub fn mounted(name: &str) -> bool {
    let needle = format!("/{name}");
    let Ok(procs) = fs::read_dir("/proc") else {
        return true;
    };
    for p in procs.flatten() {
        let pid = p.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // A process that ended meanwhile has nothing mounted.
        let Ok(info) = fs::read_to_string(p.path().join("mountinfo")) else {
            continue;
        };
        for line in info.lines() {
            if let Some(root) = line.split(' ').nth(3) {
                let hit = root.match_indices(&needle).any(|(at, _)| {
                    matches!(root.as_bytes().get(at + needle.len()), None | Some(b'/'))
                });
                if hit {
                    return true;
                }
            }
        }
    }
    false
}

/// A tree being written: a layer's entries go in through it.
pub struct Tree {
    dir: Dir,
}

impl Tree {
    pub fn open(root: &Path) -> Result<Tree, ImageTreeError> {
        let dir =
            Dir::open_ambient_dir(root, ambient_authority()).map_err(io_err("opening", root))?;
        Ok(Tree { dir })
    }

    /// The directory `rel` itself, never a link to one (cap-std keeps any
    /// resolution inside the tree; this keeps it to the path as named).
    fn dir_at(&self, rel: &str) -> io::Result<Dir> {
        if !self.dir.symlink_metadata(rel)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        self.dir.open_dir(rel)
    }

    /// Removes what `path` names (a file, link or whole directory),
    /// if anything.
    pub fn remove(&self, path: &str) -> Result<(), ImageTreeError> {
        let rel = relative(path)?;
        match self.dir.symlink_metadata(rel) {
            Ok(m) if m.is_dir() => self.dir.remove_dir_all(rel),
            Ok(_) => self.dir.remove_file(rel),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
        .map_err(io_err("removing", rel))
    }

    /// The names directory `path` holds (none if it is not a directory).
    pub fn names(&self, path: &str) -> Result<Vec<String>, ImageTreeError> {
        let rel = relative(path)?;
        let d = match self.dir_at(rel) {
            Ok(d) => d,
            Err(_) => return Ok(Vec::new()),
        };
        let mut names = Vec::new();
        for e in d.entries().map_err(io_err("listing", rel))? {
            let e = e.map_err(io_err("listing", rel))?;
            if let Ok(n) = e.file_name().into_string() {
                names.push(n);
            }
        }
        Ok(names)
    }

    /// Makes directory `path` (its parent exists), replacing anything
    /// else there.
    pub fn make_dir(&self, path: &str) -> Result<(), ImageTreeError> {
        let rel = relative(path)?;
        match self.dir.symlink_metadata(rel) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => self
                .dir
                .remove_file(rel)
                .map_err(io_err("replacing", rel))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", rel)(e)),
        }
        self.dir.create_dir(rel).map_err(io_err("making", rel))
    }

    /// Sets a directory's mode and modification time.
    pub fn dir_meta(&self, path: &str, mode: u32, mtime_ns: i64) -> Result<(), ImageTreeError> {
        let rel = relative(path)?;
        let d = self.dir_at(rel).map_err(io_err("opening", rel))?;
        d.set_permissions(".", Permissions::from_mode(mode & 0o1777))
            .map_err(io_err("setting the mode of", rel))?;
        let (parent, name) = self.parent_of(rel)?;
        let t = timespec(
            mtime_ns.div_euclid(1_000_000_000),
            mtime_ns.rem_euclid(1_000_000_000),
        );
        rustix::fs::utimensat(
            &parent,
            name,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_err("setting the times of", rel)(e.into()))
    }

    /// The directory holding `rel` (opened as named) and its last name.
    fn parent_of<'r>(&self, rel: &'r str) -> Result<(Dir, &'r str), ImageTreeError> {
        Ok(match rel.rsplit_once('/') {
            Some((p, n)) => (self.dir_at(p).map_err(io_err("opening", p))?, n),
            None => (self.dir.try_clone().map_err(io_err("opening", "."))?, rel),
        })
    }

    /// Makes file `path` anew (whatever was there is removed first, so a
    /// hard link's other names keep their content) for the caller to fill.
    pub fn create_file(&self, path: &str, mode: u32) -> Result<NewFile, ImageTreeError> {
        let rel = relative(path)?;
        self.remove(path)?;
        let file = self
            .dir
            .open_with(
                rel,
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode & 0o1777),
            )
            .map_err(io_err("making", rel))?;
        Ok(NewFile {
            file: file.into_std(),
            mode: mode & 0o1777,
            path: rel.to_string(),
        })
    }

    /// Makes symlink `path` to `target` (never followed here).
    pub fn symlink(&self, path: &str, target: &str) -> Result<(), ImageTreeError> {
        let rel = relative(path)?;
        self.remove(path)?;
        let (parent, name) = self.parent_of(rel)?;
        rustix::fs::symlinkat(target, &parent, name).map_err(|e| io_err("linking", rel)(e.into()))
    }
}

/// A file a layer is writing.
pub struct NewFile {
    file: fs::File,
    mode: u32,
    path: String,
}

impl NewFile {
    pub fn write(&mut self, data: &[u8]) -> Result<(), ImageTreeError> {
        self.file
            .write_all(data)
            .map_err(io_err("writing", &self.path))
    }

    /// Sets its mode (the umask took bits at create) and time, and closes.
    pub fn finish(self, mtime_ns: i64) -> Result<(), ImageTreeError> {
        self.file
            .set_permissions(fs::Permissions::from_mode(self.mode))
            .map_err(io_err("setting the mode of", &self.path))?;
        let t = timespec(
            mtime_ns.div_euclid(1_000_000_000),
            mtime_ns.rem_euclid(1_000_000_000),
        );
        rustix::fs::futimens(
            &self.file,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
        )
        .map_err(|e| io_err("setting the times of", &self.path)(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_clone_shares_files_and_a_layer_never_writes_through_them() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        fs::create_dir_all(base.join("usr/bin")).unwrap();
        fs::write(base.join("usr/bin/tool"), "v1").unwrap();
        fs::write(base.join("usr/gone"), "x").unwrap();
        symlink("usr/bin", base.join("bin")).unwrap();
        let next = t.path().join("next");
        let done = clone_tree(&base, &next).unwrap();
        assert_eq!((done.dirs, done.files, done.links), (3, 2, 1));
        assert_eq!(
            fs::metadata(base.join("usr/bin/tool")).unwrap().ino(),
            fs::metadata(next.join("usr/bin/tool")).unwrap().ino()
        );
        let tree = Tree::open(&next).unwrap();
        let mut f = tree.create_file("/usr/bin/tool", 0o4755).unwrap();
        f.write(b"v2").unwrap();
        f.finish(1_000_000_000).unwrap();
        tree.remove("/usr/gone").unwrap();
        tree.make_dir("/opt").unwrap();
        tree.symlink("/opt/etc", "/etc").unwrap();
        tree.dir_meta("/opt", 0o700, 0).unwrap();
        // The base is untouched; the new tree has the layer.
        assert_eq!(fs::read_to_string(base.join("usr/bin/tool")).unwrap(), "v1");
        assert!(base.join("usr/gone").exists());
        assert_eq!(fs::read_to_string(next.join("usr/bin/tool")).unwrap(), "v2");
        let mode = fs::metadata(next.join("usr/bin/tool")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "set-user-id dropped");
        assert!(!next.join("usr/gone").exists());
        assert_eq!(
            fs::read_link(next.join("opt/etc")).unwrap(),
            Path::new("/etc")
        );
        let names = tree.names("/usr").unwrap();
        assert_eq!(names, ["bin"]);
    }

    #[test]
    fn a_layer_cannot_write_outside_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let tree = Tree::open(&root).unwrap();
        // A link a step planted, absolute or relative, is never followed.
        tree.symlink("/esc", outside.to_str().unwrap()).unwrap();
        tree.symlink("/rel", "../outside").unwrap();
        for path in ["/esc/x", "/rel/x", "/../outside/x", "/a/../../outside/x"] {
            assert!(tree.create_file(path, 0o644).is_err(), "{path}");
        }
        assert!(tree.make_dir("/esc/d").is_err());
        assert!(tree.remove("/esc/x").is_err() || !outside.join("x").exists());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        // Control: an ordinary path is written.
        tree.create_file("/ok", 0o644).unwrap().finish(0).unwrap();
        assert!(root.join("ok").is_file());
    }
}

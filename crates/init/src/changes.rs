//! The `Changes` walk: what a snapshot takes. Everything under the roots
//! whose inode changed since a point in time, found by its ctime (which the
//! kernel sets on every create, write, rename and chmod, and which no
//! process can set back), walked here in the sandbox with the sandbox
//! user's permissions, so nothing the sandbox could not read itself is
//! reported.
//!
//! A changed directory is reported with its every name: a restore removes
//! whatever else it finds there, which is how deletions (of an image's file
//! under a writable root, of a file in `/home/user`) are carried over
//! without the init knowing what the image held.

use crate::conn::io_error;
use crate::State;
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use warden_protocol::{Change, ErrorKind, FileKind, Response};

/// Entries' cost per `Changes` response (well under the credit window).
const BATCH_COST: usize = 64 << 10;

pub struct Walk {
    pub roots: Vec<String>,
    pub skip: Vec<String>,
    pub since_ns: i64,
    pub max_entries: u64,
    pub max_names: u64,
}

/// Runs the walk off the protocol loop and streams what it finds.
pub async fn run(state: Rc<State>, id: u32, walk: Walk) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Change>, Response>>(2);
    let walker = tokio::task::spawn_blocking(move || {
        let mut out = Batches {
            tx,
            batch: vec![],
            cost: 0,
        };
        match walk_all(&walk, &mut out) {
            Ok(()) => out.flush(),
            Err(e) => {
                let _ = out.tx.blocking_send(Err(e));
            }
        }
    });
    let credit = state.conn.open_stream(id);
    let mut end = Response::Done;
    while let Some(msg) = rx.recv().await {
        match msg {
            Ok(batch) => {
                state
                    .conn
                    .send_payload(id, &credit, Response::Changes(batch))
                    .await
            }
            Err(e) => {
                end = e;
                break;
            }
        }
    }
    drop(rx);
    let _ = walker.await;
    state.conn.close_stream(id);
    state.conn.send(id, end).await;
}

struct Batches {
    tx: tokio::sync::mpsc::Sender<Result<Vec<Change>, Response>>,
    batch: Vec<Change>,
    cost: usize,
}

impl Batches {
    fn push(&mut self, c: Change) {
        self.cost += c.cost();
        self.batch.push(c);
        if self.cost >= BATCH_COST {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let _ = self.tx.blocking_send(Ok(std::mem::take(&mut self.batch)));
            self.cost = 0;
        }
    }
}

fn ctime_ns(md: &std::fs::Metadata) -> i64 {
    md.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.ctime_nsec())
}

fn mtime_ns(md: &std::fs::Metadata) -> i64 {
    md.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(md.mtime_nsec())
}

fn kind_of(md: &std::fs::Metadata) -> FileKind {
    use std::os::unix::fs::FileTypeExt;
    let ft = md.file_type();
    match () {
        _ if ft.is_file() => FileKind::File,
        _ if ft.is_dir() => FileKind::Dir,
        _ if ft.is_symlink() => FileKind::Symlink,
        _ if ft.is_fifo() => FileKind::Fifo,
        _ if ft.is_socket() => FileKind::Socket,
        _ if ft.is_char_device() => FileKind::CharDevice,
        _ if ft.is_block_device() => FileKind::BlockDevice,
        _ => FileKind::Other,
    }
}

fn change(path: &Path, md: &std::fs::Metadata) -> Change {
    Change {
        path: path.as_os_str().as_bytes().to_vec(),
        kind: kind_of(md),
        mode: md.mode() & 0o7777,
        size: if md.is_file() { md.size() } else { 0 },
        mtime_ns: mtime_ns(md),
        ino: md.ino(),
        ctime_ns: ctime_ns(md),
        target: Vec::new(),
        names: Vec::new(),
        skipped: None,
    }
}

struct Counts {
    entries: u64,
    names: u64,
}

fn too_many(what: &str, max: u64) -> Response {
    Response::error(
        ErrorKind::TooLarge,
        format!("more than {max} changed {what} to take"),
    )
}

fn walk_all(walk: &Walk, out: &mut Batches) -> Result<(), Response> {
    let skip: HashSet<PathBuf> = walk.skip.iter().map(PathBuf::from).collect();
    let mut counts = Counts {
        entries: 0,
        names: 0,
    };
    // Roots may lie beneath one another (a tmpfs mounted under the root):
    // each directory is taken once.
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for root in &walk.roots {
        let root = PathBuf::from(root);
        if !root.is_absolute() || skip.contains(&root) || seen.contains(&root) {
            continue;
        }
        let md = match std::fs::symlink_metadata(&root) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&root.display().to_string(), &e)),
        };
        if md.is_dir() {
            walk_tree(walk, &skip, &mut seen, root, md, out, &mut counts)?;
        } else {
            entry(walk, &root, &md, out, &mut counts)?;
        }
    }
    Ok(())
}

/// A changed entry that is not a directory.
fn entry(
    walk: &Walk,
    path: &Path,
    md: &std::fs::Metadata,
    out: &mut Batches,
    counts: &mut Counts,
) -> Result<(), Response> {
    if ctime_ns(md) < walk.since_ns {
        return Ok(());
    }
    counts.entries += 1;
    if counts.entries > walk.max_entries {
        return Err(too_many("entries", walk.max_entries));
    }
    let mut c = change(path, md);
    match c.kind {
        FileKind::File => {}
        FileKind::Symlink => match std::fs::read_link(path) {
            Ok(t) => c.target = t.as_os_str().as_bytes().to_vec(),
            // Gone since it was listed: nothing to take.
            Err(_) => return Ok(()),
        },
        _ => c.skipped = Some("not a regular file, directory or symlink".into()),
    }
    out.push(c);
    Ok(())
}

/// Pre-order, so a directory always comes before what it holds. The root
/// itself is always walked: it may be a fresh file system mounted on a
/// directory older than the sandbox (`/home/user` on `/home`), whose own
/// ctime says nothing of what is beneath.
fn walk_tree(
    walk: &Walk,
    skip: &HashSet<PathBuf>,
    seen: &mut HashSet<PathBuf>,
    root: PathBuf,
    root_md: std::fs::Metadata,
    out: &mut Batches,
    counts: &mut Counts,
) -> Result<(), Response> {
    let mut stack = vec![(root, root_md, true)];
    while let Some((dir, md, is_root)) = stack.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let changed = ctime_ns(&md) >= walk.since_ns;
        if !changed && !is_root {
            // Nothing beneath it changed either: the writable places are
            // fresh file systems, where every directory is new, and under
            // a writable root a change anywhere in an image directory
            // copies it (and every directory above it) up into the upper
            // layer, which changes its ctime. So the image's own tree,
            // almost all of a writable root, is never walked.
            continue;
        }
        let listing = std::fs::read_dir(&dir).and_then(|rd| {
            let mut names: Vec<_> = rd
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort();
            Ok(names)
        });
        let names = match listing {
            Ok(n) => n,
            Err(e) => {
                // Removed while walking: nothing to take. Unreadable: its
                // contents cannot be taken.
                if e.kind() != std::io::ErrorKind::NotFound {
                    counts.entries += 1;
                    let mut c = change(&dir, &md);
                    c.skipped = Some(format!("cannot be listed: {e}"));
                    out.push(c);
                }
                continue;
            }
        };
        counts.entries += 1;
        counts.names += names.len() as u64;
        if counts.entries > walk.max_entries {
            return Err(too_many("entries", walk.max_entries));
        }
        if counts.names > walk.max_names {
            return Err(too_many("directory names", walk.max_names));
        }
        let mut c = change(&dir, &md);
        c.names = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        out.push(c);
        let mut subdirs = Vec::new();
        for name in names {
            let path = dir.join(&name);
            if skip.contains(&path) {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if md.is_dir() {
                subdirs.push((path, md, false));
            } else {
                entry(walk, &path, &md, out, counts)?;
            }
        }
        // Reversed, so they are popped in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

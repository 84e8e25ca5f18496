//! What a resumed sandbox's files were when its restore ended, so that
//! its next snapshot (its next pause, a snapshot, a fork) takes a file it
//! has not touched since from the blob it was restored from instead of
//! reading it again.
//!
//! For each restored regular file it remembers the inode, ctime, size,
//! modification time and mode the init saw right after the restore, and
//! its content's SHA-256 (its blob is the base snapshot's). The ctime
//! moves with every write, chmod, rename or link of an inode and no
//! process can set it back, so a file
//! whose inode and ctime (and the rest) are still what was seen holds what
//! was restored. Before the sandbox is handed out, the kernel's coarse
//! clock (what file times are stamped from) is let pass the newest ctime
//! seen, so nothing written later can carry a ctime seen here.
//!
//! The snapshot it was restored from is kept while the sandbox runs
//! (purpose `base`), so those blobs stay stored; it is deleted when the
//! sandbox ends, and at start-up.

use super::{Entry, Manifest, Scope};
use crate::budget::{Budget, Held};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_protocol::{Change, Client, FileKind};
use warden_store::SnapshotId;

/// Files remembered at most: a sandbox restored with more gets no base
/// (its next snapshot reads every file, as before), so what the server
/// holds per sandbox stays small.
const MAX_FILES: usize = 50_000;

/// How long to wait for the clock to pass the newest ctime: past that, no
/// base (a clock far behind the file times would make one unsafe).
const CLOCK_WAIT: Duration = Duration::from_millis(50);

/// What one remembered file costs the server, besides its path: the
/// values below, the key's string and the map's slot (rounded up).
const FILE_BYTES: usize = 128;

/// What a resumed sandbox's restored files were.
pub struct Base {
    /// The snapshot holding their blobs (kept while the sandbox runs).
    pub snapshot: SnapshotId,
    files: HashMap<String, Known>,
    /// What this costs the server, charged to the tenant's share and to
    /// the server's total while it is kept.
    _charged: (Held, Held),
}

/// What a resume asks to remember: the snapshot it was restored from,
/// and where the memory that takes is charged.
pub struct KeepBase {
    pub snapshot: SnapshotId,
    /// The tenant's share (`base_tenant_bytes`).
    pub tenant: Arc<Budget>,
    /// Every tenant's buffers together (`buffers_total_bytes`).
    pub total: Arc<Budget>,
}

struct Known {
    ino: u64,
    ctime_ns: i64,
    size: u64,
    mtime_ns: i64,
    mode: u32,
    sha256: [u8; 32],
}

impl Base {
    /// Looks at the files of the sandbox behind `client` just restored
    /// from `manifest` (`keep.snapshot`), within `scope`, changed since
    /// `since_ns` (its set-up). None if there is nothing to remember, too
    /// much, no room in `keep`'s budgets, or the clock would not pass the
    /// files' times.
    pub async fn observe(
        client: &Client,
        manifest: &Manifest,
        scope: &Scope,
        since_ns: i64,
        keep: KeepBase,
    ) -> Result<Option<Base>, warden_protocol::ClientError> {
        let restored: HashMap<&str, &Entry> = manifest
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::File { .. }))
            .map(|e| (e.path(), e))
            .collect();
        if restored.is_empty() || restored.len() > MAX_FILES {
            return Ok(None);
        }
        let changes = client.changes(scope.walk(since_ns)).await?;
        let mut files = HashMap::new();
        let mut newest = i64::MIN;
        for c in changes {
            if c.kind != FileKind::File || c.skipped.is_some() {
                continue;
            }
            let Ok(path) = String::from_utf8(c.path.clone()) else {
                continue;
            };
            let Some(Entry::File {
                mode,
                mtime_ns,
                size,
                sha256,
                ..
            }) = restored.get(path.as_str())
            else {
                continue;
            };
            // What the restore wrote, as it wrote it.
            if (c.size, c.mode, c.mtime_ns) != (*size, *mode, *mtime_ns) {
                continue;
            }
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(sha256, &mut digest).is_err() {
                continue;
            }
            newest = newest.max(c.ctime_ns);
            let known = Known {
                ino: c.ino,
                ctime_ns: c.ctime_ns,
                size: c.size,
                mtime_ns: c.mtime_ns,
                mode: c.mode,
                sha256: digest,
            };
            files.insert(path, known);
        }
        if files.is_empty() {
            return Ok(None);
        }
        let cost = files
            .keys()
            .map(|p| p.len().saturating_add(FILE_BYTES))
            .fold(0usize, usize::saturating_add);
        let Some(charged) = charge(&keep, cost) else {
            tracing::info!(
                snapshot = %keep.snapshot,
                "not remembering {} restored files ({cost} bytes): no room in \
                 base_tenant_bytes or buffers_total_bytes; the next pause reads them",
                files.len()
            );
            return Ok(None);
        };
        if !clock_passes(newest).await {
            return Ok(None);
        }
        Ok(Some(Base {
            snapshot: keep.snapshot,
            files,
            _charged: charged,
        }))
    }

    /// The SHA-256 of file `c`'s content (found at `path` by a walk), if
    /// it is a restored file untouched since (its blob is the base's).
    pub fn unchanged(&self, path: &str, c: &Change) -> Option<String> {
        let k = self.files.get(path)?;
        let same = c.kind == FileKind::File
            && (c.ino, c.ctime_ns, c.size, c.mtime_ns, c.mode)
                == (k.ino, k.ctime_ns, k.size, k.mtime_ns, k.mode);
        same.then(|| hex::encode(k.sha256))
    }
}

/// `cost` bytes held from the tenant's share and the server's total, or
/// nothing held if either has no room.
fn charge(keep: &KeepBase, cost: usize) -> Option<(Held, Held)> {
    let tenant = keep.tenant.hold(cost)?;
    let total = keep.total.hold(cost)?;
    Some((tenant, total))
}

/// The kernel's coarse wall clock, in ns since the epoch.
fn coarse_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    t.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec)
}

/// Waits until the coarse clock is a millisecond past `ctime_ns` (the
/// millisecond for a sandbox kernel, gVisor's, whose clock is read from
/// the host's but not at the same instant): a file written from then on
/// has a later ctime. False if that does not happen within [`CLOCK_WAIT`].
async fn clock_passes(ctime_ns: i64) -> bool {
    let until = ctime_ns.saturating_add(1_000_000);
    let started = Instant::now();
    while coarse_ns() <= until {
        if started.elapsed() > CLOCK_WAIT {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

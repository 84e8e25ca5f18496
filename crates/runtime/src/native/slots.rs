//! Sandbox slots: each live sandbox holds one, and the slot decides its host
//! uid/gid range and its cgroup name.
//!
//! A slot is held by an exclusive `flock` on `<state>/slots/<n>.lock`, so two
//! Warden processes never hand out the same one, and the kernel releases it
//! when its holder dies however it dies. Finding a slot's lock free while its
//! cgroup still exists therefore means the previous holder crashed, and its
//! leftovers can be reaped safely.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// First host uid used for sandboxes; far above any regular account.
pub const UID_BASE: u32 = 0x1000_0000;
/// Host ids per sandbox: the whole 16-bit id space of an ordinary system.
pub const IDS_PER_SLOT: u32 = 65536;
/// Concurrent sandboxes per host.
pub const MAX_SLOTS: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("cannot use slot directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("all {MAX_SLOTS} sandbox slots are in use")]
    Exhausted,
}

/// A held slot; dropping it releases the lock.
#[derive(Debug)]
pub struct Slot {
    index: u32,
    _lock: File,
}

impl Slot {
    pub fn index(&self) -> u32 {
        self.index
    }

    /// First host uid (and gid) of this slot's range; sandbox id N maps to
    /// `host_base() + N`.
    pub fn host_base(&self) -> u32 {
        host_base(self.index)
    }

    pub fn cgroup_name(&self) -> String {
        cgroup_name(self.index)
    }
}

pub fn host_base(index: u32) -> u32 {
    UID_BASE + index * IDS_PER_SLOT
}

pub fn cgroup_name(index: u32) -> String {
    format!("slot-{index}")
}

/// Parses a name made by [`cgroup_name`].
pub fn parse_cgroup_name(name: &str) -> Option<u32> {
    name.strip_prefix("slot-")?
        .parse()
        .ok()
        .filter(|i| *i < MAX_SLOTS)
}

pub struct Slots {
    dir: PathBuf,
}

fn try_lock(path: &Path) -> Result<Option<File>, std::io::Error> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match rustix::fs::flock(
        f.as_fd(),
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    ) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Slots {
    pub fn open(state_dir: &Path) -> Result<Slots, SlotError> {
        let dir = state_dir.join("slots");
        std::fs::create_dir_all(&dir).map_err(|source| SlotError::Dir {
            path: dir.clone(),
            source,
        })?;
        Ok(Slots { dir })
    }

    /// Takes the lowest free slot.
    pub fn acquire(&self) -> Result<Slot, SlotError> {
        for index in 0..MAX_SLOTS {
            if let Some(lock) = self.try_acquire(index)? {
                return Ok(lock);
            }
        }
        Err(SlotError::Exhausted)
    }

    /// Takes slot `index` if nobody (in this or another process) holds it.
    pub fn try_acquire(&self, index: u32) -> Result<Option<Slot>, SlotError> {
        let path = self.dir.join(format!("{index}.lock"));
        match try_lock(&path) {
            Ok(Some(f)) => Ok(Some(Slot { index, _lock: f })),
            Ok(None) => Ok(None),
            Err(source) => Err(SlotError::Dir { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let slots = Slots::open(dir.path()).unwrap();
        let a = slots.acquire().unwrap();
        let b = slots.acquire().unwrap();
        assert_eq!((a.index(), b.index()), (0, 1));
        assert!(slots.try_acquire(0).unwrap().is_none());
        drop(a);
        assert_eq!(slots.acquire().unwrap().index(), 0);
    }

    #[test]
    fn id_ranges_never_overlap() {
        for i in 0..MAX_SLOTS - 1 {
            assert_eq!(host_base(i) + IDS_PER_SLOT, host_base(i + 1));
        }
        // The last range still fits in a u32 below the "invalid" uid -1.
        assert!(host_base(MAX_SLOTS - 1).checked_add(IDS_PER_SLOT).is_some());
    }

    #[test]
    fn cgroup_names_round_trip() {
        assert_eq!(parse_cgroup_name(&cgroup_name(17)), Some(17));
        assert_eq!(parse_cgroup_name("slot-x"), None);
        assert_eq!(parse_cgroup_name("other"), None);
        assert_eq!(parse_cgroup_name(&format!("slot-{MAX_SLOTS}")), None);
    }
}

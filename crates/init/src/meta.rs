//! File metadata as E2B's envd keeps it: extended attributes under
//! `user.e2b.` ([`META_XATTR_PREFIX`]), so what an upload sets and what code
//! in the sandbox sets with `setxattr` are one thing.

use rustix::fs::XattrFlags;
use std::path::Path;
use warden_protocol::{META_MAX_BYTES, META_MAX_PAIRS, META_XATTR_PREFIX};

/// `path`'s metadata (not following a last symlink), the prefix off, sorted
/// by key, within [`META_MAX_BYTES`] and [`META_MAX_PAIRS`]. A filesystem without extended
/// attributes, a file gone meanwhile or a value that is not UTF-8 reads as
/// no metadata (or without that value): a stat never fails for it.
pub fn read(path: &Path) -> Vec<(String, String)> {
    let Some(names) = names(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut used = 0;
    let mut value = [0u8; META_MAX_BYTES];
    for name in names.split(|b| *b == 0) {
        let Some(key) = name.strip_prefix(META_XATTR_PREFIX.as_bytes()) else {
            continue;
        };
        let Ok(key) = std::str::from_utf8(key) else {
            continue;
        };
        // ERANGE (a value longer than the whole budget) skips it too.
        let Ok(n) = rustix::fs::lgetxattr(path, name, &mut value[..]) else {
            continue;
        };
        let Ok(v) = std::str::from_utf8(&value[..n]) else {
            continue;
        };
        if key.is_empty() || used + key.len() + n > META_MAX_BYTES {
            continue;
        }
        if out.len() == META_MAX_PAIRS {
            break;
        }
        used += key.len() + n;
        out.push((key.to_string(), v.to_string()));
    }
    out.sort();
    out
}

/// The names of `path`'s extended attributes, NUL-separated; `None` for
/// none (the common case, answered from a small buffer).
fn names(path: &Path) -> Option<Vec<u8>> {
    let mut small = [0u8; 512];
    match rustix::fs::llistxattr(path, &mut small[..]) {
        Ok(0) => None,
        Ok(n) => Some(small[..n].to_vec()),
        Err(rustix::io::Errno::RANGE) => {
            // The kernel's bound on a list (XATTR_LIST_MAX).
            let mut big = vec![0u8; 64 * 1024];
            let n = rustix::fs::llistxattr(path, &mut big[..]).ok()?;
            big.truncate(n);
            Some(big)
        }
        Err(_) => None,
    }
}

/// Sets `meta` on a newly made file. Keys are checked here too (the host
/// checks them first): a key that is empty, holds a NUL or makes an
/// attribute name longer than the kernel's 255 bytes is refused.
pub fn set(file: impl rustix::fd::AsFd, meta: &[(String, String)]) -> std::io::Result<()> {
    for (key, value) in meta {
        let name = format!("{META_XATTR_PREFIX}{key}");
        if key.is_empty() || key.contains('\0') || name.len() > 255 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("metadata key {key:?} is not a usable attribute name"),
            ));
        }
        rustix::fs::fsetxattr(&file, name.as_str(), value.as_bytes(), XattrFlags::empty())?;
    }
    Ok(())
}

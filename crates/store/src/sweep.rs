//! The start-up sweep: storage a dead process left behind.
//!
//! A process killed during an upload or an output export leaves objects no
//! row points at (written, but the row was never inserted), the local
//! backend's partial multipart files (`<id>#<part>`, which listings never
//! show), and storage reservations. None of them is counted against the
//! tenant's quota, and nothing else would ever remove them. The sweep runs
//! before the server takes requests and touches only what is older than
//! its start, so nothing of the running process can be caught.

use crate::objects::{ObjectKind, Objects};
use crate::{MetaStore, Millis, Result, TenantId};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use std::path::Path;

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Storage reservations of uploads that never finished.
    pub reservations: u64,
    /// Whole objects without a row.
    pub orphans: u64,
    /// Partial multipart files (local backend).
    pub partials: u64,
}

/// Removes what a dead process left: reservations and unreferenced
/// objects made before `started`, and partial multipart files.
pub async fn sweep(meta: &dyn MetaStore, objects: &Objects, started: Millis) -> Result<Swept> {
    let mut swept = Swept {
        reservations: meta.clear_storage_reservations(started).await?,
        ..Swept::default()
    };
    let store = objects.store();
    let mut listing = store.list(Some(&ObjectPath::from("tenants")));
    let mut orphans = Vec::new();
    while let Some(o) = listing.try_next().await? {
        if o.last_modified.timestamp_millis() >= started {
            continue;
        }
        let Some((tenant, kind, id)) = parse_key(&o.location) else {
            // Not a key Warden makes: left alone (an operator's file).
            continue;
        };
        if !meta.object_referenced(&tenant, kind, &id).await? {
            orphans.push(o.location);
        }
    }
    drop(listing);
    for key in orphans {
        match store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => swept.orphans += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(root) = objects.local_root() {
        let root = root.join("tenants");
        swept.partials = tokio::task::spawn_blocking(move || remove_partials(&root, started))
            .await
            .map_err(|e| crate::StoreError::Invalid(format!("sweep task: {e}")))??;
    }
    Ok(swept)
}

/// `tenants/<tenant>/<kind>/<id>` into its parts.
fn parse_key(key: &ObjectPath) -> Option<(TenantId, ObjectKind, String)> {
    let parts: Vec<_> = key.parts().collect();
    let [top, tenant, kind, id] = parts.as_slice() else {
        return None;
    };
    if top.as_ref() != "tenants" {
        return None;
    }
    let kind = ObjectKind::parse(kind.as_ref())?;
    Some((
        TenantId::parse(tenant.as_ref())?,
        kind,
        id.as_ref().to_owned(),
    ))
}

/// Deletes `<root>/<tenant>/<kind>/<name>#<digits>` files older than
/// `started`, and the directories they leave empty.
fn remove_partials(root: &Path, started: Millis) -> Result<u64> {
    let mut removed = 0;
    let Ok(tenants) = std::fs::read_dir(root) else {
        return Ok(0);
    };
    for tenant in tenants.flatten() {
        let Ok(kinds) = std::fs::read_dir(tenant.path()) else {
            continue;
        };
        for kind in kinds.flatten() {
            let Ok(files) = std::fs::read_dir(kind.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_partial(name) || modified_ms(&f.path()) >= started {
                    continue;
                }
                match std::fs::remove_file(f.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // Best effort, as the store's own cleanup: only empty ones go.
            let _ = std::fs::remove_dir(kind.path());
        }
        let _ = std::fs::remove_dir(tenant.path());
    }
    Ok(removed)
}

/// The local backend's name for part N of an upload in progress.
fn is_partial(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn modified_ms(path: &Path) -> Millis {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        assert!(is_partial("file_abc#1"));
        assert!(is_partial("file_abc#12"));
        assert!(!is_partial("file_abc"));
        assert!(!is_partial("file_abc#"));
        assert!(!is_partial("file_abc#x1"));
    }
}

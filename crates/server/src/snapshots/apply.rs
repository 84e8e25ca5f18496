//! Writing a layer snapshot into an image's root on this node (a built
//! image's step): the same order as a restore into a sandbox (what the
//! step deleted, directories, files and links, then directories' modes
//! and times), but on the host, through `warden_runtime::image_tree`,
//! which keeps every write inside the tree and never writes through a
//! hard link the image below shares.

use super::{Entry, Manifest};
use crate::service::{Error, Result};
use futures::StreamExt;
use std::collections::HashSet;
use std::path::Path;
use warden_runtime::image_tree::{ImageTreeError, Tree};
use warden_store::{ObjectKind, TenantStore};

fn tree_error(e: ImageTreeError) -> Error {
    Error::internal("writing an image layer", e)
}

/// Writes `manifest` over the tree at `root`. Top-level names are never
/// removed (a step cannot take away what the image's layout is).
pub async fn apply(store: &TenantStore, manifest: &Manifest, root: &Path) -> Result<()> {
    if manifest.version != super::MANIFEST_VERSION {
        return Err(Error::internal(
            "reading a layer",
            format!("manifest version {}", manifest.version),
        ));
    }
    let tree = Tree::open(root).map_err(tree_error)?;
    let entries: Vec<&Entry> = manifest
        .entries
        .iter()
        .filter(|e| e.path() != "/")
        .collect();
    for e in &entries {
        if let Entry::Dir { path, names, .. } = e {
            let keep: HashSet<&str> = names.iter().map(String::as_str).collect();
            for here in tree.names(path).map_err(tree_error)? {
                if !keep.contains(here.as_str()) {
                    tree.remove(&super::join(path, &here)).map_err(tree_error)?;
                }
            }
        }
    }
    for e in &entries {
        if let Entry::Dir { path, .. } = e {
            tree.make_dir(path).map_err(tree_error)?;
        }
    }
    let objects = store.objects();
    for e in &entries {
        match e {
            Entry::File {
                path,
                mode,
                mtime_ns,
                blob,
                ..
            } => {
                let mut file = tree.create_file(path, *mode).map_err(tree_error)?;
                let mut body = objects.get_stream(ObjectKind::Blobs, blob).await?;
                while let Some(chunk) = body.next().await {
                    file.write(&chunk?).map_err(tree_error)?;
                }
                file.finish(*mtime_ns).map_err(tree_error)?;
            }
            Entry::Symlink { path, target, .. } => {
                tree.symlink(path, target).map_err(tree_error)?
            }
            Entry::Dir { .. } => {}
        }
    }
    for e in entries.iter().rev() {
        if let Entry::Dir {
            path,
            mode,
            mtime_ns,
            ..
        } = e
        {
            tree.dir_meta(path, *mode, *mtime_ns).map_err(tree_error)?;
        }
    }
    Ok(())
}

//! A tenant's images: what an image name means for a sandbox (the
//! operator's images first, then the caller's own), listing, deleting,
//! and their roots on this node.
//!
//! A tenant image's root is its last layer's directory,
//! `<data>/images/<tenant>/<key>`: the layer below's directory copied
//! (hard links) with the layer's snapshot written over it (see
//! `warden_runtime::image_tree`). Layers live in the store (snapshots of
//! blobs), so a node without the directory makes it again from them
//! ([`materialize`]); the directories are this node's cache. Directories
//! of layers no image names any more are renamed `.gone-*` and removed
//! once no sandbox has them mounted.

use crate::api_images::ImageInfo;
use crate::auth::Caller;
use crate::images::ImageIdentity;
use crate::service::audit::{self, Action};
use crate::service::{Error, Result};
use crate::state::AppState;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use warden_spec::Image;
use warden_store::{ImageRecord, TenantId, TenantStore};

/// Where a tenant's image roots are on this node.
pub fn tenant_dir(st: &AppState, tenant: &TenantId) -> PathBuf {
    st.cfg.data_dir.join("images").join(tenant.as_str())
}

/// The image `name` means for the caller: an operator's (or `host`),
/// else the caller's own built image (its root made here if missing).
pub async fn resolve(
    st: &AppState,
    store: &TenantStore,
    name: &str,
) -> Result<(Image, ImageIdentity)> {
    if crate::images::is_operator(&st.cfg.images_dir, name) || !crate::images::valid_name(name) {
        return crate::images::resolve(&st.cfg.images_dir, name);
    }
    let Some(record) = store.get_image(name).await? else {
        // The refusal lists the operator's images.
        return crate::images::resolve(&st.cfg.images_dir, name);
    };
    let Some(top) = record.layers.last() else {
        return Err(Error::internal("reading an image", "it has no layers"));
    };
    let root = materialize(st, store, top).await?;
    Ok((
        Image::Dir(root.to_string_lossy().into_owned()),
        ImageIdentity {
            name: record.name.clone(),
            content_sha256: Some(record.content_sha256.clone()),
            built_at: Some(crate::api::time(record.built_at)),
        },
    ))
}

/// The root of layer `key` of the tenant's, made here (from the layer
/// below's) if this node does not have it.
pub fn materialize<'a>(
    st: &'a AppState,
    store: &'a TenantStore,
    key: &'a str,
) -> BoxFuture<'a, Result<PathBuf>> {
    Box::pin(async move {
        let dir = tenant_dir(st, store.tenant_id());
        let root = dir.join(key);
        if root.is_dir() {
            return Ok(root);
        }
        let layer = store
            .get_layer(key)
            .await?
            .ok_or_else(|| Error::conflict("a layer of the image is gone; build it again"))?;
        let below = match &layer.parent {
            Some(parent) => materialize(st, store, parent).await?,
            None => base_root(st, &layer.base)?,
        };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::internal("making the images directory", e))?;
        let new = dir.join(format!(".new-{key}-{}", rand::random::<u32>()));
        let made = make_root(store, &layer, &below, &new).await;
        if let Err(e) = made {
            let _ = remove_tree(new).await;
            return Err(e);
        }
        if let Err(e) = tokio::fs::rename(&new, &root).await {
            // Another start made it meanwhile: theirs is as good.
            let _ = remove_tree(new).await;
            if !root.is_dir() {
                return Err(Error::internal("placing an image layer", e));
            }
        }
        Ok(root)
    })
}

async fn make_root(
    store: &TenantStore,
    layer: &warden_store::LayerRecord,
    below: &Path,
    new: &Path,
) -> Result<()> {
    let (from, to) = (below.to_path_buf(), new.to_path_buf());
    tokio::task::spawn_blocking(move || warden_runtime::image_tree::clone_tree(&from, &to))
        .await
        .map_err(|e| Error::internal("copying an image", e))?
        .map_err(|e| Error::internal("copying an image", e))?;
    let manifest = super::snapshots::manifest_by_id(store, &layer.snapshot_id).await?;
    crate::snapshots::apply::apply(store, &manifest, new).await
}

/// The directory of an operator's image a build starts from.
pub fn base_root(st: &AppState, name: &str) -> Result<PathBuf> {
    base(st, name).map(|(dir, _)| dir)
}

/// An operator's image a build starts from: its directory and identity.
pub fn base(st: &AppState, name: &str) -> Result<(PathBuf, ImageIdentity)> {
    match crate::images::resolve(&st.cfg.images_dir, name)? {
        (Image::Dir(d), id) => Ok((PathBuf::from(d), id)),
        (Image::Host, _) => Err(Error::invalid(
            "base \"host\": an image is built on a directory image (python-data, or one of \
             yours); the host image is the host's own /usr, which Warden does not copy",
        )),
    }
}

async fn remove_tree(path: PathBuf) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(path))
        .await
        .map_err(std::io::Error::other)?
}

/// The caller's images and the operator's, as shown.
pub async fn list(st: &AppState, store: &TenantStore) -> Result<Vec<ImageInfo>> {
    let mut out = vec![operator_info(st, "host")?];
    for name in crate::images::available(&st.cfg.images_dir) {
        out.push(operator_info(st, &name)?);
    }
    out.extend(store.list_images().await?.into_iter().map(tenant_info));
    Ok(out)
}

/// One image the caller may use, by name.
pub async fn get(st: &AppState, store: &TenantStore, name: &str) -> Result<ImageInfo> {
    if crate::images::is_operator(&st.cfg.images_dir, name) {
        return operator_info(st, name);
    }
    match store.get_image(name).await? {
        Some(r) => Ok(tenant_info(r)),
        None => Err(Error::not_found("image")),
    }
}

fn operator_info(st: &AppState, name: &str) -> Result<ImageInfo> {
    let (_, id) = crate::images::resolve(&st.cfg.images_dir, name)?;
    Ok(ImageInfo {
        name: id.name,
        owner: "operator".into(),
        base: None,
        content_sha256: id.content_sha256,
        built_at: id.built_at,
        packages: crate::images::packages(&st.cfg.images_dir, name),
        steps: None,
        layers: Vec::new(),
    })
}

pub fn tenant_info(r: ImageRecord) -> ImageInfo {
    ImageInfo {
        name: r.name,
        owner: "tenant".into(),
        base: Some(r.base),
        content_sha256: Some(r.content_sha256),
        built_at: Some(crate::api::time(r.built_at)),
        packages: r.packages,
        steps: Some(r.steps),
        layers: r.layers,
    }
}

/// Deletes the caller's image (audited). Sandboxes started from it keep
/// running on it; its layers go once none is mounted.
pub async fn delete(st: &AppState, caller: &Caller, name: &str) -> Result<()> {
    if crate::images::is_operator(&st.cfg.images_dir, name) {
        return Err(Error::Forbidden(format!(
            "{name:?} is the operator's image; tenants delete only their own"
        )));
    }
    if !caller.store.delete_image(name).await? {
        return Err(Error::not_found("image"));
    }
    collect(st, &caller.store).await?;
    audit::by_caller(st, caller, Action::ImageDelete, name, "ok").await?;
    Ok(())
}

/// Deletes the tenant's layers no image names (their snapshots, and their
/// roots here once nothing has them mounted).
pub async fn collect(st: &AppState, store: &TenantStore) -> Result<()> {
    let dir = tenant_dir(st, store.tenant_id());
    for layer in store.unused_layers().await? {
        store.delete_layer(&layer.key).await?;
        super::snapshots::remove(store, &layer.snapshot_id).await?;
        let root = dir.join(&layer.key);
        if root.is_dir() {
            let gone = dir.join(format!(".gone-{}-{}", layer.key, rand::random::<u32>()));
            if let Err(e) = tokio::fs::rename(&root, &gone).await {
                tracing::warn!(layer = %layer.key, "retiring an image layer: {e}");
            }
        }
    }
    sweep_dir(dir, false).await;
    Ok(())
}

/// Removes a tenant's retired roots no sandbox has mounted, and at
/// start-up its unfinished ones (a crash's).
async fn sweep_dir(dir: PathBuf, startup: bool) {
    let swept = tokio::task::spawn_blocking(move || {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = name.starts_with(".gone-") || (startup && name.starts_with(".new-"));
            if old && !warden_runtime::image_tree::mounted(&name) {
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    tracing::warn!(dir = %e.path().display(), "removing an old image root: {err}");
                }
            }
        }
    })
    .await;
    if let Err(e) = swept {
        tracing::warn!("sweeping image roots: {e}");
    }
}

/// At start-up: every tenant's unfinished and retired image roots.
pub async fn sweep(data_dir: &Path) {
    let all = data_dir.join("images");
    for e in std::fs::read_dir(all).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            sweep_dir(e.path(), true).await;
        }
    }
}

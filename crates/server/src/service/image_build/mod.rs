//! Building a tenant's image in steps (`POST /v1/images`).
//!
//! Each step has a key: the SHA-256 of the layer below's key (or the base
//! image's name and content digest), the step as asked, the content digest
//! of the file it copies and the pip index it installs from. A layer of
//! the tenant's with that key is reused; otherwise the step runs in a
//! fresh native sandbox started on the image so far (its root directory
//! on this node), as the sandbox's root (no capabilities), with a writable
//! root and egress to `[builds] allow_hosts` only. What it changed (by
//! ctime, as a snapshot takes it, outside the scratch places) becomes the
//! layer: a snapshot of purpose `layer`, whose blobs count in the tenant's
//! storage. A rebuild that changes only the last step reruns only it.
//!
//! A build holds one of the tenant's sandbox slots while a step runs, and
//! a tenant builds one image at a time on a node. A failed step leaves
//! the image as it was (the steps before it stay cached).

mod step;

use crate::api_images::{BuildEvent, BuildImage, ImageInfo, Step};
use crate::auth::Caller;
use crate::service::audit::{self, Action};
use crate::service::{images, Error, Result};
use crate::state::Shared;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;
use tokio::sync::mpsc;
use warden_store::{now_ms, FileId, FileMeta, ImageRecord, TenantId};

/// A build checked and keyed, ready to run.
pub struct Plan {
    name: String,
    /// As asked (an operator's image or one of the tenant's).
    base: String,
    /// The operator's image at the bottom.
    root_base: String,
    /// The layers of a tenant's base image, kept under the new ones.
    below: Vec<String>,
    /// The content digest below the first new step.
    below_content: String,
    steps: Vec<Planned>,
    asked: serde_json::Value,
}

struct Planned {
    step: Step,
    key: String,
    file: Option<FileMeta>,
}

/// Checks a build before anything runs: the name, the base, every step
/// (uploaded files are the caller's), and computes each step's key.
pub async fn plan(st: &Shared, caller: &Caller, req: BuildImage) -> Result<Plan> {
    super::check_resource_name("image", &req.name)?;
    if crate::images::is_operator(&st.cfg.images_dir, &req.name) {
        return Err(Error::invalid(format!(
            "{:?} is the operator's image; choose another name",
            req.name
        )));
    }
    // A new image past the tenant's count is refused before any step
    // runs (the store checks again when the image is recorded).
    if caller.store.get_image(&req.name).await?.is_none() {
        let quotas = caller
            .store
            .tenant()
            .await?
            .ok_or_else(|| Error::not_found("tenant"))?
            .quotas;
        let kept = caller.store.list_images().await?.len();
        if kept >= quotas.max_images as usize {
            return Err(Error::Quota(format!(
                "max_images: the tenant keeps {kept} images, its limit is {}",
                quotas.max_images
            )));
        }
    }
    let max = st.cfg.builds.max_steps as usize;
    if req.steps.is_empty() || req.steps.len() > max {
        return Err(Error::invalid(format!(
            "an image has 1 to {max} steps ([builds] max_steps)"
        )));
    }
    // What the first step builds on: an operator's image (its name and
    // content digest key it), or one of the tenant's (its top layer).
    let (root_base, below, below_content, mut parent) =
        if crate::images::is_operator(&st.cfg.images_dir, &req.base) {
            let (_, id) = images::base(st, &req.base)?;
            let digest = id.content_sha256.unwrap_or_default();
            let key = format!("base:{}:{digest}", req.base);
            (req.base.clone(), Vec::new(), digest, key)
        } else {
            let b = caller.store.get_image(&req.base).await?.ok_or_else(|| {
                Error::invalid(format!(
                    "base {:?}: not an image (GET /v1/images lists them)",
                    req.base
                ))
            })?;
            let top = b.layers.last().cloned().unwrap_or_default();
            let root = caller
                .store
                .get_layer(&top)
                .await?
                .map(|l| l.base)
                .ok_or_else(|| Error::conflict("the base image's layers are gone"))?;
            (root, b.layers, b.content_sha256, top)
        };
    let mut steps = Vec::new();
    for (i, step) in req.steps.iter().enumerate() {
        let file = check_step(&caller.store, i + 1, step).await?;
        let pip_index = matches!(step, Step::Pip(_)).then_some(&st.cfg.builds.pip_index_url);
        // A file step is keyed by its file's content, not by which upload
        // of it (a recipe uploads its files again on every build).
        let keyed = match step {
            Step::File(f) => serde_json::json!({"file": {"path": f.path, "mode": f.mode}}),
            other => serde_json::json!(other),
        };
        let key = hex(&serde_json::json!({
            "v": 1,
            "below": parent,
            "step": keyed,
            "file_sha256": file.as_ref().map(|f| &f.sha256),
            "pip_index": pip_index,
        })
        .to_string());
        parent = key.clone();
        steps.push(Planned {
            step: step.clone(),
            key,
            file,
        });
    }
    Ok(Plan {
        name: req.name.clone(),
        base: req.base.clone(),
        root_base,
        below,
        below_content,
        asked: serde_json::to_value(&req.steps).map_err(|e| Error::internal("encoding", e))?,
        steps,
    })
}

fn hex(s: &str) -> String {
    format!("{:x}", Sha256::digest(s.as_bytes()))
}

fn is_package_name(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 128
        && p.as_bytes()[0].is_ascii_alphanumeric()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.:=~_".contains(&b))
}

fn is_requirement(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 256
        && p.as_bytes()[0].is_ascii_alphanumeric()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.=<>!~,_[]".contains(&b))
}

async fn check_step(
    store: &warden_store::TenantStore,
    n: usize,
    step: &Step,
) -> Result<Option<FileMeta>> {
    let bad = |what: String| Err(Error::invalid(format!("step {n}: {what}")));
    match step {
        Step::Apt(p) | Step::Pip(p) if p.is_empty() || p.len() > 256 => {
            bad("1 to 256 packages".into())
        }
        Step::Apt(p) => match p.iter().find(|p| !is_package_name(p)) {
            Some(x) => bad(format!("{x:?} is not a Debian package name")),
            None => Ok(None),
        },
        Step::Pip(p) => match p.iter().find(|p| !is_requirement(p)) {
            Some(x) => bad(format!(
                "{x:?} is not a requirement (name, name==1.2, name[extra]>=1)"
            )),
            None => Ok(None),
        },
        Step::Run(c) if c.trim().is_empty() || c.len() > 65536 => {
            bad("a command of 1 to 65536 bytes".into())
        }
        Step::Run(_) => Ok(None),
        Step::File(f) => {
            if !f.path.starts_with('/') || warden_runtime::image_tree::relative(&f.path).is_err() {
                return bad(format!("{:?} is not an absolute path", f.path));
            }
            if f.mode.is_some_and(|m| m > 0o777) {
                return bad("mode is permission bits (at most 0777)".into());
            }
            let not_found = || Error::not_found(format!("step {n}: file {:?}", f.file_id));
            let id = FileId::parse(&f.file_id).ok_or_else(not_found)?;
            Ok(Some(store.get_file(&id).await?.ok_or_else(not_found)?))
        }
    }
}

/// The tenants building on this node (one build each at a time).
static BUILDING: Mutex<Option<HashSet<TenantId>>> = Mutex::new(None);

struct Building(TenantId);

impl Building {
    fn take(t: &TenantId) -> Result<Building> {
        let mut set = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
        if !set.get_or_insert_with(HashSet::new).insert(t.clone()) {
            return Err(Error::conflict(
                "another image build of this tenant is running; try again when it ends",
            ));
        }
        Ok(Building(t.clone()))
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        let mut set = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = set.as_mut() {
            s.remove(&self.0);
        }
    }
}

/// Where a build's progress goes; a client gone away ends the build.
pub struct Events(pub mpsc::Sender<BuildEvent>);

impl Events {
    async fn send(&self, e: BuildEvent) -> Result<()> {
        self.0
            .send(e)
            .await
            .map_err(|_| Error::conflict("the build's client went away"))
    }
}

/// Runs a planned build (audited), sending its progress to `events`.
pub async fn run(st: &Shared, caller: &Caller, plan: Plan, events: &Events) -> Result<ImageInfo> {
    let name = plan.name.clone();
    let result = run_inner(st, caller, plan, events).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    audit::by_caller(st, caller, Action::ImageBuild, &name, outcome).await?;
    result
}

async fn run_inner(st: &Shared, caller: &Caller, plan: Plan, events: &Events) -> Result<ImageInfo> {
    let _building = Building::take(caller.store.tenant_id())?;
    let started = std::time::Instant::now();
    let store = &caller.store;
    let of = plan.steps.len();
    let mut layers = plan.below.clone();
    let mut content = plan.below_content.clone();
    let mut packages = Vec::new();
    let mut ran = 0;
    for (i, p) in plan.steps.iter().enumerate() {
        let known = store.get_layer(&p.key).await?;
        events
            .send(BuildEvent::Step {
                index: i + 1,
                of,
                cached: known.is_some(),
                key: p.key.clone(),
                summary: p.step.summary(),
            })
            .await?;
        let layer = match known {
            Some(l) => l,
            None => {
                ran += 1;
                let below = match layers.last() {
                    Some(k) => images::materialize(st, store, k).await?,
                    None => images::base_root(st, &plan.root_base)?,
                };
                let layer = step::run(
                    st,
                    caller,
                    &plan,
                    p,
                    (layers.last(), &content),
                    below,
                    events,
                )
                .await?;
                store.put_layer(&layer).await?;
                images::materialize(st, store, &layer.key).await?;
                layer
            }
        };
        content = layer.content_sha256.clone();
        packages = layer.packages.clone();
        layers.push(layer.key);
    }
    if let Some(top) = layers.last() {
        images::materialize(st, store, top).await?;
    }
    let record = ImageRecord {
        tenant_id: store.tenant_id().clone(),
        name: plan.name.clone(),
        base: plan.base.clone(),
        steps: plan.asked.clone(),
        layers,
        content_sha256: content,
        packages,
        built_at: now_ms(),
    };
    store
        .put_image(&record)
        .await
        .map_err(crate::snapshots::capture::quota_error)?;
    images::collect(st, store).await?;
    let info = images::tenant_info(record);
    events
        .send(BuildEvent::Done {
            image: info.clone(),
            steps_run: ran,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
        .await
        .ok();
    Ok(info)
}

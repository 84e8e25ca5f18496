//! A finished job's `/output`: exported link-safely (the runtime's rules, as
//! for `warden run`) into a scratch directory within the operator's caps
//! and the tenant's storage left, stored as objects keyed by generated ids,
//! recorded by path; then the provenance manifest.

use std::borrow::Cow;
use std::path::Path;
use warden_protocol::Client;
use warden_runtime::export::{export_limited, ExportLimits, ExportReport};
use warden_store::jobs::OutputRecord;
use warden_store::{JobStore, ObjectKind, OutputId, ReviewId, TenantStore};

/// Warden's provenance record, stored with the outputs.
pub const MANIFEST: &str = "manifest.json";

/// Where a file the sandbox left at `rel` is stored. Warden's manifest is
/// `manifest.json`; a top-level agent file named `manifest(.agent)*.json`
/// gets one more `.agent` (`manifest.json` -> `manifest.agent.json`,
/// `manifest.agent.json` -> `manifest.agent.agent.json`, ...). Every other
/// name is kept, so no agent name can take Warden's, and no two agent names
/// can take the same path: the export cannot fail on a name.
pub fn stored_path(rel: &str) -> Cow<'_, str> {
    let agent_manifest = rel
        .strip_prefix("manifest")
        .and_then(|r| r.strip_suffix(".json"))
        .filter(|mid| mid.len() % 6 == 0 && mid.as_bytes().chunks(6).all(|c| c == b".agent"));
    match agent_manifest {
        Some(mid) => Cow::Owned(format!("manifest{mid}.agent.json")),
        None => Cow::Borrowed(rel),
    }
}

/// What one export stored.
#[derive(Debug, Default)]
pub struct Collected {
    pub stored: Vec<OutputRecord>,
    /// `(path in /output, stored path)` for the names moved by
    /// [`stored_path`].
    pub renamed: Vec<(String, String)>,
    pub report: ExportReport,
    /// What the export was allowed to take, and the tenant's storage left
    /// when it started (one of the bounds of `max_bytes`).
    pub max_bytes: u64,
    pub max_entries: u64,
    pub storage_left: u64,
}

impl Collected {
    /// Some of `/output` was left out because of a limit.
    pub fn truncated(&self) -> bool {
        self.report.truncated
    }
}

/// Exports and stores `/output` within `limits`. On failure nothing of this
/// export is left: neither rows, nor objects, nor scratch files.
pub async fn collect(
    client: &Client,
    store: &TenantStore,
    jobs: &dyn JobStore,
    review: &ReviewId,
    scratch: &Path,
    limits: ExportLimits,
) -> anyhow::Result<Collected> {
    let _ = tokio::fs::remove_dir_all(scratch).await;
    let result = store_all(client, store, jobs, review, scratch, limits).await;
    let _ = tokio::fs::remove_dir_all(scratch).await;
    if result.is_err() {
        clear(store, jobs, review).await;
    }
    result
}

async fn store_all(
    client: &Client,
    store: &TenantStore,
    jobs: &dyn JobStore,
    review: &ReviewId,
    scratch: &Path,
    limits: ExportLimits,
) -> anyhow::Result<Collected> {
    let report = export_limited(client, "/output", scratch, limits).await?;
    let mut out = Collected {
        max_bytes: limits.max_bytes,
        max_entries: limits.max_entries,
        ..Collected::default()
    };
    for (rel, _) in &report.files {
        let path = stored_path(rel);
        if path != rel.as_str() {
            out.renamed.push((rel.clone(), path.to_string()));
        }
        let local = scratch.join(rel);
        let file = tokio::fs::File::open(&local).await?;
        let stream = tokio_util::io::ReaderStream::new(file);
        out.stored
            .push(put(store, jobs, review, &path, stream).await?);
        // The scratch copy is not needed once stored: the host holds one
        // copy of each output at a time, not two.
        let _ = tokio::fs::remove_file(&local).await;
    }
    out.report = report;
    Ok(out)
}

async fn put<S>(
    store: &TenantStore,
    jobs: &dyn JobStore,
    review: &ReviewId,
    path: &str,
    stream: S,
) -> anyhow::Result<OutputRecord>
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Unpin,
{
    let id = OutputId::generate();
    let put = store
        .objects()
        .put_stream(ObjectKind::Outputs, id.as_str(), stream, u64::MAX)
        .await?;
    let rec = OutputRecord {
        review_id: review.clone(),
        tenant_id: store.tenant_id().clone(),
        path: path.to_string(),
        object_id: id,
        size: put.size,
        sha256: put.sha256,
    };
    if let Err(e) = jobs.insert_output(&rec).await {
        // No row points at the object: nothing else would ever remove it.
        let _ = store
            .objects()
            .delete(ObjectKind::Outputs, rec.object_id.as_str())
            .await;
        return Err(e.into());
    }
    Ok(rec)
}

/// Stores the manifest as one more output.
pub async fn put_manifest(
    store: &TenantStore,
    jobs: &dyn JobStore,
    review: &ReviewId,
    manifest: &serde_json::Value,
) -> anyhow::Result<OutputRecord> {
    let bytes = bytes::Bytes::from(serde_json::to_vec_pretty(manifest)?);
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    put(store, jobs, review, MANIFEST, stream).await
}

/// Removes what an earlier attempt (or a failed export) stored.
pub async fn clear(store: &TenantStore, jobs: &dyn JobStore, review: &ReviewId) {
    match jobs.clear_outputs(store.tenant_id(), review).await {
        Ok(ids) => {
            for id in ids {
                let _ = store
                    .objects()
                    .delete(ObjectKind::Outputs, id.as_str())
                    .await;
            }
        }
        Err(e) => tracing::error!(%review, "clearing outputs: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_never_take_the_manifest_or_each_other() {
        let names = [
            "manifest.json",
            "manifest.agent.json",
            "manifest.agent.agent.json",
            "manifest.agentx.json",
            "manifest.jsonx",
            "report.html",
            "dir/manifest.json",
        ];
        let stored: Vec<String> = names.iter().map(|n| stored_path(n).into_owned()).collect();
        assert_eq!(
            stored,
            [
                "manifest.agent.json",
                "manifest.agent.agent.json",
                "manifest.agent.agent.agent.json",
                "manifest.agentx.json",
                "manifest.jsonx",
                "report.html",
                "dir/manifest.json",
            ]
        );
        assert!(!stored.iter().any(|s| s == MANIFEST));
        let distinct: std::collections::HashSet<_> = stored.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }
}

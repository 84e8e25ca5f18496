//! A finished job's `/output`: exported link-safely (the runtime's rules, as
//! for `warden run`) into a scratch directory, stored as objects keyed by
//! generated ids, recorded by path; then the provenance manifest.

use std::path::Path;
use warden_protocol::Client;
use warden_runtime::export::{export, ExportReport};
use warden_store::jobs::OutputRecord;
use warden_store::{JobStore, ObjectKind, OutputId, ReviewId, TenantStore};

/// Warden's provenance record, stored with the outputs.
pub const MANIFEST: &str = "manifest.json";
/// Where an agent's own `manifest.json` is kept instead.
pub const AGENT_MANIFEST: &str = "manifest.agent.json";

/// Exports and stores `/output`; returns the stored outputs and the export
/// report (skipped entries and why).
pub async fn collect(
    client: &Client,
    store: &TenantStore,
    jobs: &dyn JobStore,
    review: &ReviewId,
    scratch: &Path,
    max_bytes: u64,
) -> anyhow::Result<(Vec<OutputRecord>, ExportReport)> {
    let _ = tokio::fs::remove_dir_all(scratch).await;
    let report = export(client, "/output", scratch, max_bytes).await?;
    let mut stored = Vec::new();
    for (rel, _) in &report.files {
        let path = if rel == MANIFEST {
            AGENT_MANIFEST.to_string()
        } else {
            rel.clone()
        };
        let file = tokio::fs::File::open(scratch.join(rel)).await?;
        let stream = tokio_util::io::ReaderStream::new(file);
        stored.push(put(store, jobs, review, &path, stream).await?);
    }
    let _ = tokio::fs::remove_dir_all(scratch).await;
    Ok((stored, report))
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
    jobs.insert_output(&rec).await?;
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

/// Removes what an earlier attempt stored (a retry exports afresh).
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

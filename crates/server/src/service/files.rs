//! A tenant's uploads: streamed into the object store, checked
//! (`crate::checks`: type, archive limits, scanner), recorded and audited;
//! found, deleted, and signed upload URLs made and redeemed. The `/v1`
//! handlers (`routes/files.rs`) only read the request (raw body,
//! multipart, a token) and present the answer.

use super::audit::{Action, Audit};
use super::error::{Error, Result};
use crate::checks;
use crate::signed::{self, Claims};
use crate::sniff;
use crate::state::AppState;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use warden_store::{now_ms, FileId, FileMeta, ObjectKind, StoreError, TenantId, TenantStore};

/// Who the audit log names for uploads through a signed URL.
pub const UPLOAD_URL_ACTOR: &str = "upload-url";

/// Longest a signed upload URL may live, and how long one lives unless
/// asked otherwise.
const MAX_URL_SECS: u64 = 86_400;
const DEFAULT_URL_SECS: u64 = 900;

fn file_id(id: &str) -> Result<FileId> {
    FileId::parse(id).ok_or_else(|| Error::not_found("file"))
}

/// The most one file may hold (the tenant's `max_file_bytes`); the storage
/// quota is enforced as the bytes arrive, by reservations (`put_file`).
async fn file_limit(store: &TenantStore) -> Result<u64> {
    let tenant = store
        .tenant()
        .await?
        .ok_or_else(|| Error::not_found("tenant"))?;
    Ok(tenant.quotas.max_file_bytes)
}

/// Reads and drops what is left of a refused upload's body (up to 64 MiB),
/// so the client, still sending, reads the answer instead of a reset.
async fn drain_rest<S, E>(stream: &mut S)
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
{
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > 64 << 20 {
            break;
        }
    }
}

/// What the audit log records of a refused upload: the refusal and its
/// detail, or the code of another failure.
fn refusal_outcome(e: &Error) -> String {
    match e {
        Error::Refused { why, detail, .. } if detail.is_empty() => why.code().to_string(),
        Error::Refused { why, detail, .. } => format!("{}: {detail}", why.code()),
        other => format!("error: {}", other.code()),
    }
}

/// Streams one upload into the store, checks it and records it, audited as
/// `actor`'s either way (a refused upload's object is deleted). `declared`
/// is the body's Content-Length when the client sent one (reserved up
/// front).
pub async fn upload<S, E>(
    st: &AppState,
    store: &TenantStore,
    actor: &str,
    name: &str,
    stream: S,
    declared: Option<u64>,
) -> Result<FileMeta>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    sniff::check_name(name).map_err(Error::invalid)?;
    let limit = file_limit(store).await?;
    let id = FileId::generate();
    let mut stream = Box::pin(stream);
    let put = match store.put_file(&id, &mut stream, limit, declared).await {
        Ok(p) => p,
        Err(StoreError::TooLarge { limit }) => {
            drain_rest(&mut stream).await;
            return Err(Error::TooLarge(format!(
                "max_file_bytes: the file is larger than {limit} bytes"
            )));
        }
        // The body itself failed: nothing left to read.
        Err(e @ StoreError::Upload(_)) => return Err(e.into()),
        // Refused for the quota, or the store failed (a full disk): the
        // client, still sending, reads the answer.
        Err(e) => {
            drain_rest(&mut stream).await;
            return Err(e.into());
        }
    };
    let passed = match checks::run(st, store, &id, name, &put).await {
        Ok(p) => p,
        Err(refused) => {
            if let Err(e) = store.objects().delete(ObjectKind::Files, id.as_str()).await {
                tracing::warn!(file = %id, error = %e, "could not delete a refused upload");
            }
            store.release_upload(&id).await;
            let entry = Audit {
                actor,
                action: Action::FileUpload,
                target: name,
                outcome: &refusal_outcome(&refused),
            };
            super::audit::append(st.meta.as_ref(), store.tenant_id(), entry).await?;
            return Err(refused);
        }
    };
    let meta = FileMeta {
        id: id.clone(),
        tenant_id: store.tenant_id().clone(),
        name: name.to_string(),
        size: put.size,
        sha256: put.sha256,
        content_type: passed.content_type,
        created_at: now_ms(),
        scan: passed.scan,
    };
    if let Err(e) = store.insert_file(&meta).await {
        let _ = store.objects().delete(ObjectKind::Files, id.as_str()).await;
        store.release_upload(&id).await;
        return Err(e.into());
    }
    let entry = Audit {
        actor,
        action: Action::FileUpload,
        target: meta.id.as_str(),
        outcome: "ok",
    };
    super::audit::append(st.meta.as_ref(), store.tenant_id(), entry).await?;
    Ok(meta)
}

/// The tenant's file `id`.
pub async fn find(store: &TenantStore, id: &str) -> Result<FileMeta> {
    store
        .get_file(&file_id(id)?)
        .await?
        .ok_or_else(|| Error::not_found("file"))
}

/// Deletes the tenant's file `id` (its row, then its bytes), audited.
pub async fn delete(st: &AppState, store: &TenantStore, actor: &str, id: &str) -> Result<()> {
    let id = file_id(id)?;
    if !store.delete_file(&id).await? {
        return Err(Error::not_found("file"));
    }
    store
        .objects()
        .delete(ObjectKind::Files, id.as_str())
        .await?;
    let entry = Audit {
        actor,
        action: Action::FileDelete,
        target: id.as_str(),
        outcome: "ok",
    };
    super::audit::append(st.meta.as_ref(), store.tenant_id(), entry).await?;
    Ok(())
}

/// A signed URL one upload named `name` may be sent to without a key,
/// until it expires (`expires_in_secs`, 1 s to a day; 15 minutes by
/// default), audited. Returns the URL and when it expires.
pub async fn upload_url(
    st: &AppState,
    store: &TenantStore,
    actor: &str,
    name: String,
    expires_in_secs: Option<u64>,
) -> Result<(String, i64)> {
    sniff::check_name(&name).map_err(Error::invalid)?;
    let secs = expires_in_secs.unwrap_or(DEFAULT_URL_SECS);
    if !(1..=MAX_URL_SECS).contains(&secs) {
        return Err(Error::invalid(format!(
            "expires_in_secs must be 1 to {MAX_URL_SECS}"
        )));
    }
    let expires = now_ms() + secs as i64 * 1000;
    let nonce: [u8; 16] = rand::random();
    let claims = Claims {
        t: store.tenant_id().to_string(),
        n: name,
        e: expires,
        x: hex::encode(nonce),
    };
    let token = signed::sign(&st.signing_key, &claims);
    let entry = Audit {
        actor,
        action: Action::FileUploadUrl,
        target: &claims.n,
        outcome: "ok",
    };
    super::audit::append(st.meta.as_ref(), store.tenant_id(), entry).await?;
    Ok((format!("{}/v1/uploads/{token}", st.cfg.base_url()), expires))
}

/// Redeems a signed upload URL's `token` once: the upload goes to the
/// tenant that made it, named as it said, through every check.
pub async fn signed_upload<S, E>(
    st: &AppState,
    token: &str,
    stream: S,
    declared: Option<u64>,
) -> Result<FileMeta>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let claims = signed::verify(&st.signing_key, token, now_ms())
        .map_err(|e| Error::Forbidden(e.to_string()))?;
    let tenant = TenantId::parse(&claims.t)
        .ok_or_else(|| Error::Forbidden("the upload URL is malformed".into()))?;
    match st.meta.get_tenant(&tenant).await? {
        Some(t) if !t.disabled => {}
        _ => {
            return Err(Error::Forbidden(
                "the upload URL's tenant is gone or disabled".into(),
            ))
        }
    }
    if !st.meta.use_upload_nonce(&claims.x, claims.e).await? {
        return Err(Error::Forbidden(
            "the upload URL has already been used".into(),
        ));
    }
    let store = st.tenant_store(tenant);
    upload(st, &store, UPLOAD_URL_ACTOR, &claims.n, stream, declared).await
}

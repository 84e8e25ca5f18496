//! Upload checks, run on every upload (raw, multipart or through a signed
//! URL) once its bytes are in the store and before its row is recorded, so
//! a file a sandbox can mount has passed them all:
//!
//! 1. the type, from the bytes (`kinds`): it must be on the tenant's list
//!    (an admin's per-tenant policy, else `[uploads] allowed_types`);
//! 2. zip-based types (`archive`): entry count, total size and ratio, on the
//!    declared sizes and then by inflating with a hard cap;
//! 3. the operator's scanner command, if configured (`scanner`), whose
//!    verdict is recorded on the file.
//!
//! A refusal is a `service::Error::Refused` (why, the detail an audit entry
//! records, the message). A refused upload's object is deleted by the
//! caller (`service::files`) and its refusal audited; no row ever names it.

mod archive;
pub mod kinds;
mod scanner;

pub use kinds::known_types;

use crate::service::error::Refusal;
use crate::service::Error;
use crate::state::AppState;
use futures::StreamExt;
use kinds::Found;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use warden_store::{FileId, ObjectKind, PutResult, StoreError, TenantId, TenantStore};

/// A tenant's upload policy, as `GET /v1/tenants/{id}/upload-policy` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadPolicy {
    /// The type names the tenant's uploads may have.
    pub allowed_types: Vec<String>,
    /// True when no list was set for the tenant and the server's default
    /// (`[uploads] allowed_types`) applies.
    pub default: bool,
}

/// The body of `PUT /v1/tenants/{id}/upload-policy`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUploadPolicy {
    /// Type names (pdf, csv, text, json, html, xml, xlsx, docx, pptx, png,
    /// jpeg, gif, webp, zip, archive, executable, octet-stream, other,
    /// empty); null returns the tenant to the server's default.
    pub allowed_types: Option<Vec<String>>,
}

/// Kept in the settings table: tenant ids are never reused, so a deleted
/// tenant's entry can name no one else.
fn policy_key(t: &TenantId) -> String {
    format!("upload_policy:{t}")
}

pub async fn policy(st: &AppState, t: &TenantId) -> Result<UploadPolicy, StoreError> {
    let stored = match st.meta.get_setting(&policy_key(t)).await? {
        Some(v) => serde_json::from_str::<SetUploadPolicy>(&v)
            .map_err(|e| StoreError::Corrupt(format!("upload policy of {t}: {e}")))?,
        None => SetUploadPolicy {
            allowed_types: None,
        },
    };
    Ok(match stored.allowed_types {
        Some(allowed_types) => UploadPolicy {
            allowed_types,
            default: false,
        },
        None => UploadPolicy {
            allowed_types: st.cfg.uploads.allowed_types.clone(),
            default: true,
        },
    })
}

/// Checks and stores a new policy; an unknown type name is invalid.
pub async fn set_policy(
    st: &AppState,
    t: &TenantId,
    new: SetUploadPolicy,
) -> Result<UploadPolicy, Error> {
    let allowed_types = match new.allowed_types {
        Some(list) => Some(known_types(&list).map_err(Error::invalid)?),
        None => None,
    };
    let value = serde_json::to_string(&SetUploadPolicy { allowed_types })
        .map_err(|e| Error::internal("encoding the upload policy", e))?;
    st.meta.set_setting(&policy_key(t), &value).await?;
    Ok(policy(st, t).await?)
}

/// What the checks add to the file's row.
#[derive(Debug)]
pub struct Passed {
    pub content_type: String,
    /// The scanner's verdict (`None`: no scanner configured).
    pub scan: Option<String>,
}

fn refuse(why: Refusal, detail: &str, message: String) -> Error {
    Error::Refused {
        why,
        detail: detail.to_string(),
        message,
    }
}

/// Runs every check on the stored object `id` (`name` is the upload's name,
/// for messages).
pub async fn run(
    st: &AppState,
    store: &TenantStore,
    id: &FileId,
    name: &str,
    put: &PutResult,
) -> Result<Passed, Error> {
    let allowed = policy(st, store.tenant_id()).await?.allowed_types;
    let local = Local::new(st, store, id).await?;
    let u = &st.cfg.uploads;
    let limits = archive::Limits {
        max_entries: u.max_zip_entries,
        max_total: u.max_zip_uncompressed_bytes,
        max_ratio: u.max_zip_ratio,
        ratio_min: u.zip_ratio_min_bytes,
    };
    let (path, head, size, list) = (
        local.path.clone(),
        put.head.clone(),
        put.size,
        allowed.clone(),
    );
    let found = tokio::task::spawn_blocking(move || inspect(&path, &head, size, &list, &limits))
        .await
        .map_err(|e| Error::internal("checking an upload", e))??;
    let list = match allowed.is_empty() {
        true => "nothing".to_string(),
        false => allowed.join(", "),
    };
    if !allowed.iter().any(|t| t == found.name) {
        return Err(if found.name == "empty" {
            refuse(
                Refusal::EmptyFile,
                "",
                format!("the file is empty (0 bytes); this tenant accepts only: {list}"),
            )
        } else {
            refuse(
                Refusal::TypeNotAllowed,
                found.name,
                format!(
                    "the file's bytes are {}, which this tenant does not accept (allowed: {list}); \
                     types come from the bytes, never from the name",
                    found.describe()
                ),
            )
        });
    }
    let scan = match u.scanner.is_empty() {
        true => None,
        false => Some(scan(st, &local.path, name).await?),
    };
    Ok(Passed {
        content_type: found.mime,
        scan,
    })
}

/// The type of the file at `path`, refusing zip-based files of an allowed
/// type that break an archive limit. Blocking: reads the whole file.
fn inspect(
    path: &Path,
    head: &[u8],
    size: u64,
    allowed: &[String],
    limits: &archive::Limits,
) -> Result<Found, Error> {
    if size == 0 {
        return Ok(Found::new("empty", "application/x-empty"));
    }
    let mime = crate::sniff::sniff(head);
    let refused = |r: archive::Refused| {
        refuse(
            Refusal::ArchiveRejected,
            r.limit,
            format!("{}: {}", r.limit, r.message),
        )
    };
    if archive::is_zip(head) {
        return match archive::open(path, limits).map_err(refused)? {
            archive::Opened::Zip(name, mime, mut zip) => {
                // Inflating is for archives that could be kept: a type the
                // tenant refuses anyway is refused as such.
                if allowed.iter().any(|t| t == name) {
                    archive::verify(&mut zip, limits).map_err(refused)?;
                }
                Ok(Found::new(name, mime))
            }
            archive::Opened::Damaged(why) => Ok(Found {
                detail: Some(format!("a damaged zip archive: {why}")),
                ..Found::new("octet-stream", kinds::OCTET)
            }),
        };
    }
    archive::verify_embedded(path, limits).map_err(refused)?;
    let name = kinds::of_mime(mime);
    if kinds::is_text(name) {
        let nul = kinds::first_nul(path).map_err(|e| Error::internal("reading an upload", e))?;
        if let Some(at) = nul {
            return Ok(Found {
                detail: Some(format!("it starts as {name}, but byte {at} is NUL")),
                ..Found::new("octet-stream", kinds::OCTET)
            });
        }
    }
    Ok(Found::new(name, mime))
}

/// The scanner's verdict as recorded, or the refusal.
async fn scan(st: &AppState, path: &Path, name: &str) -> Result<String, Error> {
    let u = &st.cfg.uploads;
    let timeout = Duration::from_secs(u.scanner_timeout_secs.max(1));
    match scanner::scan(&u.scanner, path, name, timeout).await {
        scanner::Verdict::Clean => Ok("clean".into()),
        scanner::Verdict::Flagged(line) => Err(refuse(
            Refusal::MalwareDetected,
            &line,
            format!("the upload scanner flagged the file: {line}"),
        )),
        scanner::Verdict::Failed(why) if u.scanner_fail_closed => {
            tracing::warn!("upload scanner failed: {why}");
            Err(refuse(
                Refusal::ScannerUnavailable,
                &why,
                format!(
                    "the upload could not be scanned ({why}); it was not kept, try again later"
                ),
            ))
        }
        scanner::Verdict::Failed(why) => {
            tracing::warn!("upload scanner failed, file kept unscanned: {why}");
            Ok(format!("error: {why}"))
        }
    }
}

/// The stored object as a file on this machine: its own path in a local
/// store, else a copy in the work directory, removed when dropped.
struct Local {
    path: PathBuf,
    spooled: bool,
}

impl Local {
    async fn new(st: &AppState, store: &TenantStore, id: &FileId) -> Result<Local, Error> {
        let objects = store.objects();
        if let Some(path) = objects.local_path(ObjectKind::Files, id.as_str()) {
            if path.is_file() {
                return Ok(Local {
                    path,
                    spooled: false,
                });
            }
        }
        let local = Local {
            path: st.work_dir().join(format!("upload-{id}")),
            spooled: true,
        };
        let spool_err = |e: std::io::Error| Error::internal("spooling an upload", e);
        let mut out = tokio::fs::File::create(&local.path)
            .await
            .map_err(spool_err)?;
        let mut stream = objects.get_stream(ObjectKind::Files, id.as_str()).await?;
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await.map_err(spool_err)?;
        }
        out.flush().await.map_err(spool_err)?;
        Ok(local)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if self.spooled {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

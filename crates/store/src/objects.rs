//! Object storage (uploaded files, job outputs and logs) on any
//! `object_store::ObjectStore`; the local directory backend by default.
//!
//! Keys are `tenants/<tenant id>/<kind>/<object id>`: made only from ids
//! Warden generated, never from a name a user chose, and only through a
//! [`TenantObjects`] handle, which cannot name another tenant's prefix.

use crate::{Result, StoreError, TenantId};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many leading bytes [`PutResult::head`] keeps (enough for type
/// sniffing).
const HEAD_LEN: usize = 8192;
/// Multipart part size: S3's minimum for all parts but the last, and small
/// enough that an upload holds at most a few of them in memory.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts being written at once; with `PART_SIZE` this bounds the memory one
/// upload can use to ~15 MiB however fast the client sends.
const PARTS_IN_FLIGHT: usize = 2;
const MAX_ID_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Files,
    Outputs,
    /// A job's captured stdout/stderr.
    Logs,
    /// Snapshots' file contents, one object per content (`BlobKey`).
    Blobs,
    /// Snapshots' manifests (by `SnapshotId`).
    Snapshots,
}

impl ObjectKind {
    /// The kind a key segment names.
    pub fn parse(s: &str) -> Option<ObjectKind> {
        Some(match s {
            "files" => ObjectKind::Files,
            "outputs" => ObjectKind::Outputs,
            "logs" => ObjectKind::Logs,
            "blobs" => ObjectKind::Blobs,
            "snapshots" => ObjectKind::Snapshots,
            _ => return None,
        })
    }

    /// The key segment for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Files => "files",
            ObjectKind::Outputs => "outputs",
            ObjectKind::Logs => "logs",
            ObjectKind::Blobs => "blobs",
            ObjectKind::Snapshots => "snapshots",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// The first `min(size, 8192)` bytes, for type sniffing.
    pub head: Vec<u8>,
}

/// Only characters that are inert in every backend's key syntax and in a
/// filesystem path, so an id can never climb out of its prefix.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The object store, shared by every tenant's handle.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// The directory behind `store` when it is a `LocalFileSystem`.
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("store", &self.store.to_string())
            .field("local_root", &self.local_root)
            .finish()
    }
}

impl Objects {
    /// Objects in a local directory (created if missing).
    pub fn local(root: &Path) -> Result<Objects> {
        std::fs::create_dir_all(root)?;
        // The store canonicalizes its prefix; `local_path` must name the same
        // files, so it uses the canonical root too.
        let root = std::fs::canonicalize(root)?;
        // Automatic cleanup removes a tenant's directories once its last
        // object is deleted, so deleted tenants leave no trace on disk.
        let store = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        Ok(Objects {
            store: Arc::new(store),
            local_root: Some(root),
        })
    }

    /// Objects in any other backend (S3, GCS, Azure, in-memory...).
    /// `TenantObjects::local_path` is always `None` for these.
    pub fn new(store: Arc<dyn ObjectStore>) -> Objects {
        Objects {
            store,
            local_root: None,
        }
    }

    /// The backend, for store-wide maintenance (the start-up sweep, audit
    /// anchors); tenant data is reached through [`Objects::tenant`].
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The directory behind a local backend.
    pub(crate) fn local_root(&self) -> Option<&Path> {
        self.local_root.as_deref()
    }

    pub fn tenant(&self, t: &TenantId) -> TenantObjects {
        TenantObjects {
            store: Arc::clone(&self.store),
            local_root: self.local_root.clone(),
            tenant: t.clone(),
        }
    }
}

/// One tenant's objects; every key it makes is under that tenant's prefix.
#[derive(Clone)]
pub struct TenantObjects {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    tenant: TenantId,
}

impl std::fmt::Debug for TenantObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantObjects")
            .field("tenant", &self.tenant)
            .field("local_root", &self.local_root)
            .finish_non_exhaustive()
    }
}

impl TenantObjects {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    fn prefix(&self) -> Result<ObjectPath> {
        // Tenant ids come from authentication and are well-formed; checked
        // anyway because a malformed one would name some other prefix.
        if !valid_segment(self.tenant.as_str()) {
            return Err(StoreError::Corrupt(format!(
                "invalid tenant id for an object key: {:?}",
                self.tenant.as_str()
            )));
        }
        Ok(ObjectPath::from_iter(["tenants", self.tenant.as_str()]))
    }

    fn key(&self, kind: ObjectKind, id: &str) -> Result<ObjectPath> {
        if !valid_segment(id) {
            return Err(StoreError::Corrupt(format!("invalid object id: {id:?}")));
        }
        Ok(ObjectPath::from_iter(
            self.prefix()?
                .parts()
                .chain([kind.as_str().into(), id.into()]),
        ))
    }

    /// Streams into the store (a multipart upload, never buffering the whole
    /// body), hashing as it goes. More than `max_bytes` aborts the upload
    /// with `TooLarge`; a stream error aborts it with `Upload`. Nothing is
    /// left behind on failure.
    pub async fn put_stream<S, E>(
        &self,
        kind: ObjectKind,
        id: &str,
        stream: S,
        max_bytes: u64,
    ) -> Result<PutResult>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.put_stream_with(kind, id, stream, max_bytes, &mut NoGate)
            .await
    }

    /// [`put_stream`](Self::put_stream), asking `gate` before writing each
    /// chunk whether the object may grow to its new size (e.g. to reserve
    /// the bytes against a quota); its error aborts the upload.
    pub async fn put_stream_with<S, E>(
        &self,
        kind: ObjectKind,
        id: &str,
        stream: S,
        max_bytes: u64,
        gate: &mut (dyn Gate + Send),
    ) -> Result<PutResult>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let path = self.key(kind, id)?;
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        match copy(stream, &mut writer, max_bytes, gate).await {
            Ok(result) => match writer.finish().await {
                Ok(_) => Ok(result),
                Err(e) => {
                    // `finish` has already aborted the upload.
                    self.prune_empty_dirs(&path);
                    Err(e.into())
                }
            },
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key = %path, error = %abort, "could not abort an upload");
                }
                self.prune_empty_dirs(&path);
                Err(e)
            }
        }
    }

    pub async fn get_stream(
        &self,
        kind: ObjectKind,
        id: &str,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let path = self.key(kind, id)?;
        // A local file is read in large pieces: object_store's local reader
        // hands out 8 KiB ones, each a blocking-pool round trip, which made
        // a 100 MiB read take most of a second.
        if let Some(file) = self.open_local(kind, id).await? {
            return Ok(read_chunks(tokio::fs::File::from_std(file)));
        }
        let got = self.store.get(&path).await?;
        Ok(got.into_stream().map_err(StoreError::from).boxed())
    }

    /// The object's file opened for reading, when the backend is a local
    /// directory (None otherwise): for a reader that can be handed the
    /// file itself (a sandbox's init, which copies it in the kernel).
    pub async fn open_local(&self, kind: ObjectKind, id: &str) -> Result<Option<std::fs::File>> {
        let Some(file) = self.local_path(kind, id) else {
            return Ok(None);
        };
        match tokio::fs::File::open(&file).await {
            Ok(f) => Ok(Some(f.into_std().await)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(
                format!("object {}", self.key(kind, id)?),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a small object whole.
    pub async fn put_bytes(&self, kind: ObjectKind, id: &str, bytes: Bytes) -> Result<()> {
        let path = self.key(kind, id)?;
        self.store.put(&path, bytes.into()).await?;
        Ok(())
    }

    /// Reads a small object whole.
    pub async fn get_bytes(&self, kind: ObjectKind, id: &str) -> Result<Bytes> {
        let path = self.key(kind, id)?;
        Ok(self.store.get(&path).await?.bytes().await?)
    }

    /// Missing objects are not an error.
    pub async fn delete(&self, kind: ObjectKind, id: &str) -> Result<()> {
        let path = self.key(kind, id)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object under this tenant's prefix, and with a local
    /// backend whatever else is in its directory (partial multipart files
    /// of interrupted uploads, which listings never show); returns how many
    /// objects.
    pub async fn delete_all(&self) -> Result<u64> {
        let prefix = self.prefix()?;
        // Prefixes match whole path segments, so this lists only this
        // tenant's objects (never those of a tenant whose id extends it).
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        // `delete_stream` lets backends with bulk deletes (S3) batch them.
        let mut deleted = self.store.delete_stream(locations);
        let mut count = 0;
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) => count += 1,
                // Deleted concurrently by someone else: gone either way.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(root) = &self.local_root {
            let dir = root.join("tenants").join(self.tenant.as_str());
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(count)
    }

    /// The object's file on disk when the backend is a local directory (for
    /// hard links into a sandbox's /input), else None.
    pub fn local_path(&self, kind: ObjectKind, id: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        if !valid_segment(id) || !valid_segment(self.tenant.as_str()) {
            return None;
        }
        Some(
            root.join("tenants")
                .join(self.tenant.as_str())
                .join(kind.as_str())
                .join(id),
        )
    }

    /// After an aborted upload to a local directory, removes the directories
    /// the upload created if they are now empty (best effort: `remove_dir`
    /// refuses non-empty ones, and a concurrent upload that loses its
    /// directory recreates it).
    fn prune_empty_dirs(&self, key: &ObjectPath) {
        let Some(root) = &self.local_root else {
            return;
        };
        let mut dir = key
            .parts()
            .fold(root.clone(), |p, part| p.join(part.as_ref()));
        while dir.pop() && dir.starts_with(root) && dir != *root {
            if std::fs::remove_dir(&dir).is_err() {
                break;
            }
        }
    }
}

/// Asked before each chunk of an upload is written.
#[async_trait::async_trait]
pub trait Gate {
    /// The object is about to hold `total` bytes; an error refuses it.
    async fn grow(&mut self, total: u64) -> Result<()>;
}

struct NoGate;

#[async_trait::async_trait]
impl Gate for NoGate {
    async fn grow(&mut self, _: u64) -> Result<()> {
        Ok(())
    }
}

/// Copies `stream` into `writer`, hashing, counting and keeping the head.
/// Fails before writing a chunk that would pass `max_bytes` or that `gate`
/// refuses.
async fn copy<S, E>(
    mut stream: S,
    writer: &mut WriteMultipart,
    max_bytes: u64,
    gate: &mut (dyn Gate + Send),
) -> Result<PutResult>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = crate::hashing::StreamHash::new();
    let mut size: u64 = 0;
    let mut head = Vec::new();
    loop {
        // The error is turned into a String at once: `E` need not be `Send`,
        // and holding it across an await would make this future not `Send`.
        let chunk = match stream.next().await {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(StoreError::Upload(e.to_string())),
        };
        let new_size = size.saturating_add(chunk.len() as u64);
        if new_size > max_bytes {
            return Err(StoreError::TooLarge { limit: max_bytes });
        }
        gate.grow(new_size).await?;
        // Back pressure: wait for earlier parts to be written before taking
        // more of the body into memory.
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        hasher.update(&chunk).await?;
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        writer.put(chunk);
        size = new_size;
    }
    Ok(PutResult {
        size,
        sha256: hasher.finish().await?,
        head,
    })
}

/// An open file as a stream of pieces of up to [`READ_CHUNK`] bytes.
fn read_chunks(file: tokio::fs::File) -> BoxStream<'static, Result<Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::try_unfold(file, |mut f| async move {
        let mut buf = bytes::BytesMut::with_capacity(READ_CHUNK);
        while buf.len() < READ_CHUNK {
            if f.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        Ok(Some((buf.freeze(), f)))
    })
    .boxed()
}

/// Bytes of a local object read at once.
const READ_CHUNK: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert!(valid_segment("file_abc234"));
        assert!(valid_segment(&"a".repeat(64)));
        assert!(!valid_segment(&"a".repeat(65)));
        assert!(!valid_segment(""));
        for bad in ["..", "a/b", "A", "a-b", "a.b", "a b", "é", "a#1"] {
            assert!(!valid_segment(bad), "{bad}");
        }
    }

    /// The upload future must be `Send` (server handlers run on a
    /// multi-threaded runtime) even when the stream's error type is not.
    #[test]
    fn put_stream_future_is_send() {
        struct NotSend(std::marker::PhantomData<*const ()>);
        impl std::fmt::Display for NotSend {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("not send")
            }
        }
        /// A `Send` stream whose items (when it has any) are not.
        struct Never;
        impl Stream for Never {
            type Item = std::result::Result<Bytes, NotSend>;
            fn poll_next(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                std::task::Poll::Ready(None)
            }
        }
        fn assert_send<T: Send>(_: &T) {}
        let objects = Objects::new(Arc::new(object_store::memory::InMemory::new()));
        let t = objects.tenant(&TenantId::generate());
        let fut = t.put_stream(ObjectKind::Files, "x", Never, 1);
        assert_send(&fut);
    }
}

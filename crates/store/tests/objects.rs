//! Objects on a real local directory.

use bytes::Bytes;
use futures::{stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use warden_store::*;

const CHUNK: usize = 64 * 1024;

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn chunks(
    data: &[u8],
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    let parts: Vec<_> = data
        .chunks(CHUNK)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(parts)
}

/// Every regular file under `root`.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

async fn read_all(t: &TenantObjects, kind: ObjectKind, id: &str) -> Vec<u8> {
    let parts: Vec<Bytes> = t
        .get_stream(kind, id)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    parts.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_chunk_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(&dir.path().join("objects")).unwrap();
    let tenant = TenantId::generate();
    let t = objects.tenant(&tenant);
    let data = body(3 << 20);

    let put = t
        .put_stream(ObjectKind::Files, "file_abc", chunks(&data), 3 << 20)
        .await
        .unwrap();
    assert_eq!(put.size, data.len() as u64);
    assert_eq!(put.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(put.head, data[..8192]);
    assert_eq!(read_all(&t, ObjectKind::Files, "file_abc").await, data);

    // The object is a plain file at the documented key.
    let local = t.local_path(ObjectKind::Files, "file_abc").unwrap();
    let root = std::fs::canonicalize(dir.path().join("objects")).unwrap();
    assert_eq!(
        local,
        root.join("tenants")
            .join(tenant.as_str())
            .join("files")
            .join("file_abc")
    );
    assert_eq!(std::fs::read(&local).unwrap(), data);
    assert_eq!(files_under(&root), vec![local]);

    // Small bodies keep all of themselves as the head; empty ones work.
    let put = t
        .put_stream(ObjectKind::Outputs, "small", chunks(b"hello"), 5)
        .await
        .unwrap();
    assert_eq!((put.size, put.head.as_slice()), (5, &b"hello"[..]));
    let put = t
        .put_stream(ObjectKind::Outputs, "empty", chunks(b""), 0)
        .await
        .unwrap();
    assert_eq!((put.size, put.head.len()), (0, 0));
    assert_eq!(put.sha256, hex::encode(Sha256::digest(b"")));
    assert!(read_all(&t, ObjectKind::Outputs, "empty").await.is_empty());
    // Kinds are separate namespaces.
    assert!(t.get_stream(ObjectKind::Files, "small").await.is_err());
}

#[tokio::test]
async fn too_large_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(dir.path()).unwrap();
    let t = objects.tenant(&TenantId::generate());
    let data = body(1 << 20);

    let err = t
        .put_stream(ObjectKind::Files, "big", chunks(&data), (1 << 20) - 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { limit } if limit == (1 << 20) - 1),
        "{err}"
    );
    assert!(t.get_stream(ObjectKind::Files, "big").await.is_err());
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
    // Not even the empty directories the upload made.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn stream_error_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(dir.path()).unwrap();
    let t = objects.tenant(&TenantId::generate());
    // 6 MiB of good data (more than one multipart part), then an error.
    let good = body(6 << 20);
    let failing = chunks(&good).chain(stream::iter([Err(std::io::Error::other(
        "client went away",
    ))]));

    let err = t
        .put_stream(ObjectKind::Files, "partial", failing, u64::MAX)
        .await
        .unwrap_err();
    match err {
        StoreError::Upload(msg) => assert!(msg.contains("client went away"), "{msg}"),
        other => panic!("expected an upload error, got {other}"),
    }
    assert!(t.get_stream(ObjectKind::Files, "partial").await.is_err());
    assert_eq!(files_under(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn delete_and_delete_all() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(dir.path()).unwrap();
    let a = objects.tenant(&TenantId::generate());
    let b = objects.tenant(&TenantId::generate());
    for id in ["one", "two", "three"] {
        a.put_stream(ObjectKind::Files, id, chunks(id.as_bytes()), 100)
            .await
            .unwrap();
    }
    a.put_stream(ObjectKind::Outputs, "out", chunks(b"o"), 100)
        .await
        .unwrap();
    b.put_stream(ObjectKind::Files, "one", chunks(b"b's"), 100)
        .await
        .unwrap();

    a.delete(ObjectKind::Files, "two").await.unwrap();
    a.delete(ObjectKind::Files, "two").await.unwrap(); // missing: fine
    assert!(a.get_stream(ObjectKind::Files, "two").await.is_err());

    assert_eq!(a.delete_all().await.unwrap(), 3);
    assert_eq!(a.delete_all().await.unwrap(), 0);
    assert!(a.get_stream(ObjectKind::Files, "one").await.is_err());
    // Only B's object is left, and A's directories are gone.
    assert_eq!(read_all(&b, ObjectKind::Files, "one").await, b"b's");
    let left = files_under(dir.path());
    assert_eq!(left, vec![b.local_path(ObjectKind::Files, "one").unwrap()]);
    let tenants: Vec<_> = std::fs::read_dir(dir.path().join("tenants"))
        .unwrap()
        .collect();
    assert_eq!(tenants.len(), 1);
}

#[tokio::test]
async fn invalid_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(dir.path()).unwrap();
    let t = objects.tenant(&TenantId::generate());
    let long = "a".repeat(65);
    for bad in [
        "",
        "..",
        "../x",
        "a/b",
        "UPPER",
        "dash-ed",
        "dot.ted",
        "sp ace",
        "a#1",
        long.as_str(),
    ] {
        let put = t.put_stream(ObjectKind::Files, bad, chunks(b"x"), 10).await;
        assert!(matches!(put, Err(StoreError::Corrupt(_))), "{bad:?}");
        assert!(matches!(
            t.get_stream(ObjectKind::Files, bad).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            t.delete(ObjectKind::Files, bad).await,
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(t.local_path(ObjectKind::Files, bad), None);
    }
    assert!(t
        .put_stream(ObjectKind::Files, &"a".repeat(64), chunks(b"x"), 10)
        .await
        .is_ok());
}

#[tokio::test]
async fn one_tenant_cannot_reach_anothers_objects() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::local(dir.path()).unwrap();
    let a = objects.tenant(&TenantId::generate());
    let b = objects.tenant(&TenantId::generate());
    a.put_stream(ObjectKind::Files, "secret", chunks(b"a's secret"), 100)
        .await
        .unwrap();

    assert!(b.get_stream(ObjectKind::Files, "secret").await.is_err());
    b.delete(ObjectKind::Files, "secret").await.unwrap();
    assert_eq!(b.delete_all().await.unwrap(), 0);
    assert_ne!(
        a.local_path(ObjectKind::Files, "secret"),
        b.local_path(ObjectKind::Files, "secret")
    );
    // Ids cannot climb into A's prefix.
    let climb = format!("../../{}/files/secret", a.tenant_id());
    assert!(b.get_stream(ObjectKind::Files, &climb).await.is_err());
    assert_eq!(
        read_all(&a, ObjectKind::Files, "secret").await,
        b"a's secret"
    );
}

//! Path operations sent as one `Batch` (how a restore puts a snapshot's
//! directories and small files into a new sandbox), run against every
//! isolation tier (`behaviour.rs`).

use super::Sb;
use warden_protocol::{
    BatchOp, ClientError, ErrorKind, FileKind, Request, Response, BATCH_ANSWER_BYTES, MAX_BATCH_OPS,
};

fn kind(a: &Result<Response, ClientError>) -> Option<ErrorKind> {
    a.as_ref().err().and_then(ClientError::remote_kind)
}

fn put(path: &str, mode: u32, mtime_ns: i64, data: &[u8]) -> BatchOp {
    BatchOp::PutFile {
        path: path.into(),
        mode,
        mtime_ns,
        data: data.to_vec().into(),
    }
}

/// The operations run in order (a directory, then a file in it, then the
/// directory's mode), each answered as if sent alone; one that fails does
/// not stop the next; a file lands whole with exactly its mode and time,
/// over what was at its path, never through a link and never where the
/// sandbox's user could not write (the same write into its own directory
/// is the control); nothing is left behind by a failed one.
pub async fn batched_path_operations(sb: &Sb) {
    let c = &sb.client;
    let mtime = 1_600_000_000_123_456_789i64;
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    // A link the batch writes over, to a file the sandbox cannot write.
    c.symlink(b"/etc/hostname", "/scratch/link").await.unwrap();
    let host_name = c.read_file("/etc/hostname").await.unwrap();
    c.mkdir("/scratch/full", false).await.unwrap();
    c.write_file("/scratch/full/x", 0o644, b"x").await.unwrap();
    let ops = vec![
        BatchOp::Mkdir {
            path: "/scratch/d".into(),
            parents: false,
        },
        put("/scratch/d/small", 0o640, mtime, b"hello"),
        put("/scratch/d/big", 0o755, mtime + 1, &big),
        // Fails: no such directory; the next runs all the same.
        put("/scratch/none/f", 0o644, mtime, b"lost"),
        put("d/relative", 0o600, mtime, b"rel"),
        put("/scratch/link", 0o644, mtime, b"replaced the link"),
        // Fails: a directory with something in it is in the way.
        put("/scratch/full", 0o644, mtime, b"no"),
        // Fails: the sandbox's user cannot write there.
        put("/etc/warden-batch", 0o644, mtime, b"no"),
        BatchOp::Symlink {
            target: b"small".to_vec(),
            path: "/scratch/d/to-small".into(),
        },
        BatchOp::SetMeta {
            path: "/scratch/d".into(),
            mode: Some(0o750),
            mtime_ns: Some(mtime),
        },
        BatchOp::Stat {
            path: "/scratch/d/to-small".into(),
        },
        BatchOp::ListDir {
            path: "/scratch/d".into(),
        },
        BatchOp::Remove {
            path: "/scratch/full".into(),
            recursive: true,
        },
        BatchOp::Remove {
            path: "/scratch/full".into(),
            recursive: true,
        },
    ];
    let a: Vec<_> = c
        .batch(ops)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(a.len(), 14);
    for i in [0, 1, 2, 4, 5, 8, 9, 12] {
        assert!(matches!(a[i], Ok(Response::Done)), "{i}: {:?}", a[i]);
    }
    assert_eq!(kind(&a[3]), Some(ErrorKind::NotFound), "{:?}", a[3]);
    assert_eq!(kind(&a[6]), Some(ErrorKind::IsADirectory), "{:?}", a[6]);
    assert_eq!(kind(&a[7]), Some(ErrorKind::PermissionDenied), "{:?}", a[7]);
    assert_eq!(kind(&a[13]), Some(ErrorKind::NotFound), "{:?}", a[13]);
    let Ok(Response::Stat(link)) = &a[10] else {
        panic!("{:?}", a[10])
    };
    assert_eq!(link.kind, FileKind::Symlink);
    let Ok(Response::Entries(listed)) = &a[11] else {
        panic!("{:?}", a[11])
    };
    let names: Vec<&[u8]> = listed.iter().map(|e| &e.name[..]).collect();
    assert_eq!(names, [&b"big"[..], b"relative", b"small", b"to-small"]);
    // What landed, as the sandbox sees it.
    assert_eq!(c.read_file("/scratch/d/small").await.unwrap(), b"hello");
    assert_eq!(c.read_file("/scratch/d/big").await.unwrap(), big);
    assert_eq!(c.read_file("/scratch/d/relative").await.unwrap(), b"rel");
    // (python's lstat: gVisor 2022 refuses coreutils' statx.)
    let out = sb
        .sh("python3 -c 'import os, stat\nfor p in [\"/scratch/d/small\", \"/scratch/d/big\", \"/scratch/d\", \"/scratch/link\"]:\n    s = os.lstat(p); print(oct(s.st_mode & 0o7777), s.st_mtime_ns, stat.S_ISREG(s.st_mode))'; cat /scratch/link")
        .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            &format!("0o640 {mtime} True")[..],
            &format!("0o755 {} True", mtime + 1),
            &format!("0o750 {mtime} False"),
            "0o644 1600000000123456789 True",
            "replaced the link"
        ],
        "{text}"
    );
    // The link's target is untouched, nothing was made in /etc, and no
    // temp file is left by the writes that failed.
    assert_eq!(c.read_file("/etc/hostname").await.unwrap(), host_name);
    let etc = c.stat("/etc/warden-batch").await.unwrap_err();
    assert_eq!(etc.remote_kind(), Some(ErrorKind::NotFound), "{etc}");
    let out = sb.sh("find /scratch -name '*.tmp' | wc -l").await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

/// A batch over the limit is refused whole; a batch whose answers grow
/// past what one answer carries stops there (the rest not run), and the
/// client sends the rest again, so every operation is answered once.
pub async fn batches_are_bounded(sb: &Sb) {
    let c = &sb.client;
    let too_many: Vec<BatchOp> = (0..=MAX_BATCH_OPS)
        .map(|i| BatchOp::Stat {
            path: format!("/scratch/{i}"),
        })
        .collect();
    let err = c.call(Request::Batch(too_many)).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest), "{err}");
    // A directory whose listing is a fair part of an answer's bytes.
    let out = sb
        .sh("mkdir /scratch/many && cd /scratch/many && for i in $(seq 1 2000); do : > file-with-a-rather-long-name-$i; done")
        .await;
    assert_eq!(out.status.code, Some(0), "{out:?}");
    let listings = 2 * BATCH_ANSWER_BYTES / (2000 * 64);
    let lists: Vec<BatchOp> = (0..listings)
        .map(|_| BatchOp::ListDir {
            path: "/scratch/many".into(),
        })
        .collect();
    let Response::Batch(first) = c.call(Request::Batch(lists.clone())).await.unwrap() else {
        panic!("not a batch answer");
    };
    assert!(
        !first.is_empty() && first.len() < listings,
        "{} of {listings} answered at once",
        first.len()
    );
    let all = c.batch(lists).await.unwrap();
    assert_eq!(all.len(), listings);
    for (_, a) in &all {
        assert!(matches!(a, Ok(Response::Entries(e)) if e.len() == 2000));
    }
}

//! Files passed over the control channel (`SCM_RIGHTS`), run against every
//! isolation tier (`behaviour.rs`): a file the host hands the init to
//! write from (`WriteFromFile`, how a restore writes a snapshot's blobs)
//! and a pipe the host hands it to read into (`ReadToFile`, how a pause
//! or snapshot takes a sandbox's files).

use super::Sb;
use std::time::Duration;
use warden_protocol::{Client, ClientError, ErrorKind, Request, Response};

/// A file handed to the init over the channel (`WriteFromFile`, how a
/// restore writes a snapshot's blobs) lands whole after what the write
/// had before; a request that came without its file is refused and ends
/// its write, leaving no temp file.
pub async fn files_passed_to_the_init(sb: &Sb) {
    use std::io::{Seek, Write};
    let c = &sb.client;
    let body: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
    let mut host = tempfile::tempfile().unwrap();
    host.write_all(&body).unwrap();
    // The init copies from the file's offset.
    host.rewind().unwrap();
    let mut w = c
        .write_open("/scratch/passed.bin", 0o600, vec![])
        .await
        .unwrap();
    w.write(b"head").await.unwrap();
    w.write_file(host.into()).await.unwrap();
    let st = w.commit().await.unwrap();
    assert_eq!(st.size, 4 + body.len() as u64);
    let back = c.read_file("/scratch/passed.bin").await.unwrap();
    assert!(
        back[..4] == *b"head" && back[4..] == body[..],
        "content differs"
    );
    // Without its file (sent as an ordinary request).
    let Response::Opened { handle } = c
        .call(Request::WriteOpen {
            path: "/scratch/none.bin".into(),
            mode: 0o600,
            meta: vec![],
        })
        .await
        .unwrap()
    else {
        panic!("no handle");
    };
    let err = c.call(Request::WriteFromFile { handle }).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unsupported), "{err}");
    let err = c.call(Request::WriteCommit { handle }).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::NotFound), "{err}");
    let names: Vec<Vec<u8>> = c
        .list_dir("/scratch")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b"passed.bin".to_vec()]);
}

/// All of what `read_piped` gives for `path` (at most `limit` bytes);
/// bounded in time, so a read that never ends fails the test.
async fn piped(c: &Client, path: &str, limit: u64) -> Result<Vec<u8>, ClientError> {
    let read = async {
        let mut r = c.read_piped(path, limit, true, false)?;
        let mut all = Vec::new();
        while let Some(piece) = r.next().await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("reading {path} through a pipe did not end"))
}

/// A file read through a pipe handed to the init comes whole (or its
/// first `limit` bytes); what `ReadFile` refuses it refuses the same way:
/// a missing file, a symlink (even to a file the sandbox may read), a
/// second link to a file, a FIFO (without hanging); and a request that
/// came without its pipe is refused.
pub async fn files_read_through_a_pipe(sb: &Sb) {
    let c = &sb.client;
    let body: Vec<u8> = (0..(3u32 << 20) + 7).map(|i| (i % 251) as u8).collect();
    c.write_file("/scratch/big.bin", 0o600, &body)
        .await
        .unwrap();
    let got = piped(c, "/scratch/big.bin", u64::MAX).await.unwrap();
    assert!(
        got == body,
        "{} bytes came, not the file's {}",
        got.len(),
        body.len()
    );
    let got = piped(c, "/scratch/big.bin", 1000).await.unwrap();
    assert_eq!(got, body[..1000]);
    c.write_file("/scratch/empty", 0o600, b"").await.unwrap();
    assert_eq!(piped(c, "/scratch/empty", u64::MAX).await.unwrap(), b"");
    let err = piped(c, "/scratch/missing", u64::MAX).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::NotFound), "{err}");
    // The control: the sandbox itself reads /etc/hostname; a link to it is
    // not followed, nor a second name for the file.
    let out = sb
        .sh(
            "cat /etc/hostname >/dev/null && ln -s /etc/hostname /scratch/link \
             && ln /scratch/big.bin /scratch/twice && mkfifo /scratch/fifo",
        )
        .await;
    assert_eq!(out.status.code, Some(0), "{}", super::text(&out.stderr));
    let err = piped(c, "/scratch/link", u64::MAX).await.unwrap_err();
    assert!(err.remote_kind().is_some(), "a symlink was followed: {err}");
    let err = piped(c, "/scratch/twice", u64::MAX).await.unwrap_err();
    assert_eq!(
        err.remote_kind(),
        Some(ErrorKind::PermissionDenied),
        "{err}"
    );
    let err = piped(c, "/scratch/fifo", u64::MAX).await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unsupported), "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // Without its pipe (sent as an ordinary request).
    let err = c
        .call(Request::ReadToFile {
            path: "/scratch/big.bin".into(),
            limit: u64::MAX,
            strict: true,
            links_ok: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::Unsupported), "{err}");
    assert!(err.to_string().contains(warden_protocol::NO_PIPE), "{err}");
    // The channel serves on.
    let st = c.stat("/scratch/big.bin").await.unwrap();
    assert_eq!(st.size, body.len() as u64);
}

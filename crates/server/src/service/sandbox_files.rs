//! Files inside a sandbox, whoever asks (`/v1`, the envd front door):
//! streamed through its init, so every path is resolved in the sandbox's
//! own view and no file is ever held whole in the server.

use crate::service::{Error, Result};
use futures::StreamExt;
use warden_protocol::{FileKind, FileStat, Request, Response as R, CHUNK};

/// A regular file's bytes, streamed from the sandbox as the client reads
/// (the first chunk is awaited, so a file that cannot be read is an error
/// response rather than a cut-off body).
pub async fn read_stream(
    client: &warden_protocol::Client,
    path: &str,
    follow_links: bool,
) -> Result<
    impl futures::Stream<Item = std::result::Result<bytes::Bytes, std::io::Error>> + Send + 'static,
> {
    let stat = client.stat(path).await?;
    // With `follow_links`, a symlink is read through (the init resolves it
    // inside the sandbox's own view; what it names must be a file).
    let link_ok = follow_links && stat.kind == FileKind::Symlink;
    if stat.kind != FileKind::File && !link_ok {
        return Err(Error::invalid(format!("{path} is not a regular file")));
    }
    let mut stream = client.stream(Request::ReadFile {
        path: path.into(),
        offset: 0,
        limit: None,
        strict: false,
        links_ok: false,
    })?;
    // The first answer tells whether the read can start at all.
    let first = match stream.next().await? {
        Some(R::Data(d)) => Some(d),
        Some(R::Done) | None => None,
        Some(other) => return Err(Error::internal("read", format!("unexpected {other:?}"))),
    };
    let rest = futures::stream::unfold(Some(stream), |s| async move {
        let mut s = s?;
        match s.next().await {
            Ok(Some(R::Data(d))) => Some((Ok(bytes::Bytes::from(d)), Some(s))),
            Ok(_) => None,
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    let head = futures::stream::iter(first.map(|d| Ok(bytes::Bytes::from(d))));
    Ok(head.chain(rest))
}

/// Writes a file atomically from a stream of chunks (a temp file renamed
/// into place on success, removed on any failure) and returns its stat.
/// `meta` is the new file's metadata (E2B's, kept as extended attributes).
pub async fn write_stream<S, E>(
    client: &warden_protocol::Client,
    path: &str,
    mode: u32,
    meta: Vec<(String, String)>,
    mut body: S,
) -> Result<FileStat>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // Chunks of CHUNK bytes, a few unanswered at once (FileWriter): no
    // round trip per body piece, and little held per upload.
    let mut w = client.write_open(path, mode, meta).await?.with_chunk(CHUNK);
    while let Some(piece) = body.next().await {
        let written = match piece {
            Ok(c) => w.write(&c).await.map_err(Error::from),
            Err(e) => Err(Error::invalid(format!("upload interrupted: {e}"))),
        };
        if let Err(e) = written {
            w.abort().await;
            return Err(e);
        }
    }
    Ok(w.commit().await?)
}

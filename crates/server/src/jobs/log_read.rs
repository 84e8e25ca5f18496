//! Reading a job's log back without holding it in memory: a decoder that
//! takes the record format (see `logs`) in pieces of any size and passes
//! the wanted bytes on as they come, and streams over it for a local file
//! or a stored object. A reader costs one buffer, whatever the log's size.

use super::logs::{Streams, STDERR, STDOUT};
use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from the log at a time.
pub const CHUNK: usize = 64 * 1024;

/// Where the decoder is in the record format.
#[derive(Debug, Clone, Copy)]
enum At {
    /// In a record's header: the bytes of it seen so far.
    Header([u8; 5], usize),
    /// In a record's payload: its stream and the bytes still to come.
    Payload(u8, u32),
}

/// Decodes records from consecutive pieces of a log.
#[derive(Debug, Clone)]
pub struct Decoder {
    streams: Streams,
    at: At,
    /// Bytes of the log fed so far (where a later reader picks up).
    pub offset: u64,
}

impl Decoder {
    pub fn new(streams: Streams) -> Decoder {
        Decoder {
            streams,
            at: At::Header([0; 5], 0),
            offset: 0,
        }
    }

    /// Feeds the next piece of the log; appends the wanted payload bytes
    /// to `out` (never more than `input.len()`).
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.offset += input.len() as u64;
        let streams = self.streams;
        while !input.is_empty() {
            match &mut self.at {
                At::Header(h, n) => {
                    let take = (5 - *n).min(input.len());
                    h[*n..*n + take].copy_from_slice(&input[..take]);
                    *n += take;
                    input = &input[take..];
                    if *n == 5 {
                        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
                        self.at = At::Payload(h[0], len);
                    }
                }
                At::Payload(tag, left) => {
                    let take = (*left as usize).min(input.len());
                    if wants(streams, *tag) {
                        out.extend_from_slice(&input[..take]);
                    }
                    *left -= take as u32;
                    input = &input[take..];
                }
            }
            if let At::Payload(_, 0) = self.at {
                self.at = At::Header([0; 5], 0);
            }
        }
    }
}

fn wants(streams: Streams, tag: u8) -> bool {
    match streams {
        Streams::Both => true,
        Streams::Stdout => tag == STDOUT,
        Streams::Stderr => tag == STDERR,
    }
}

/// The decoded log from `reader` to its end, a chunk at a time.
pub fn stream<R>(reader: R, decoder: Decoder) -> impl Stream<Item = std::io::Result<Bytes>>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    futures::stream::try_unfold(
        (reader, decoder, vec![0u8; CHUNK]),
        |(mut reader, mut decoder, mut buf)| async move {
            loop {
                let n = reader.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                let mut out = Vec::with_capacity(n);
                decoder.feed(&buf[..n], &mut out);
                if !out.is_empty() {
                    return Ok(Some((Bytes::from(out), (reader, decoder, buf))));
                }
            }
        },
    )
}

/// A stored log as a reader, from `skip` bytes in.
pub async fn stored_reader(
    objects: &warden_store::TenantObjects,
    review: &str,
    skip: u64,
) -> Option<impl AsyncRead + Unpin + Send + 'static> {
    use futures::TryStreamExt;
    let s = objects
        .get_stream(warden_store::ObjectKind::Logs, review)
        .await
        .ok()?;
    let mut reader = tokio_util::io::StreamReader::new(s.map_err(std::io::Error::other));
    if skip > 0 {
        let mut head = (&mut reader).take(skip);
        tokio::io::copy(&mut head, &mut tokio::io::sink())
            .await
            .ok()?;
    }
    Some(reader)
}

#[cfg(test)]
mod tests {
    use super::super::logs::{decode, LogWriter};
    use super::*;

    /// Fed in pieces of any size, the decoder gives what `decode` gives
    /// for the whole log.
    #[tokio::test]
    async fn pieces_of_any_size_decode_like_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let mut w = LogWriter::open(&p).await.unwrap();
        for i in 0..50u32 {
            let tag = if i % 3 == 0 { STDERR } else { STDOUT };
            w.write(
                tag,
                format!("record {i} {}\n", "x".repeat(i as usize * 7)).as_bytes(),
            )
            .await
            .unwrap();
        }
        w.flush().await.unwrap();
        let raw = std::fs::read(&p).unwrap();
        for streams in [Streams::Both, Streams::Stdout, Streams::Stderr] {
            let mut whole = Vec::new();
            decode(&raw, streams, &mut whole);
            for piece in [1, 2, 4, 5, 6, 13, 4096] {
                let mut d = Decoder::new(streams);
                let mut out = Vec::new();
                for c in raw.chunks(piece) {
                    d.feed(c, &mut out);
                }
                assert_eq!(out, whole, "{streams:?} in pieces of {piece}");
                assert_eq!(d.offset, raw.len() as u64);
            }
        }
    }
}

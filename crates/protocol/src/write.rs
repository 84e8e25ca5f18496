//! Writing a file into the sandbox with its chunks pipelined: the next
//! chunks go out while the init is still writing the earlier ones, instead
//! of one round trip per chunk. The init queues the chunks of one write
//! in the order they came and answers each; a failed one fails the write.

use crate::client::{Client, ClientError, ResponseStream};
use crate::messages::{FileStat, Request, Response};
use std::collections::VecDeque;

/// Chunks sent and not yet answered, at most: enough to keep the host
/// and the init busy at once, little enough that a refused write (a full
/// disk) wastes few.
const IN_FLIGHT: usize = 4;

/// Bytes sent in one chunk, at most: well under the protocol's frame
/// limit, and large enough that a big file takes few frames.
pub const WRITE_CHUNK: usize = 1 << 20;

/// An open write (`WriteOpen` answered): [`FileWriter::write`] its bytes,
/// then [`FileWriter::commit`] (or [`FileWriter::abort`]).
pub struct FileWriter<'a> {
    client: &'a Client,
    handle: u32,
    /// Bytes per chunk, and what is gathered towards the next one.
    chunk: usize,
    buf: Vec<u8>,
    sent: VecDeque<ResponseStream>,
}

impl Client {
    /// Opens a write of `path` (a temp file, renamed into place at commit)
    /// with `mode` and the file's `user.e2b.*` metadata `meta`.
    pub async fn write_open(
        &self,
        path: &str,
        mode: u32,
        meta: Vec<(String, String)>,
    ) -> Result<FileWriter<'_>, ClientError> {
        let req = Request::WriteOpen {
            path: path.into(),
            mode,
            meta,
        };
        match self.call(req).await? {
            Response::Opened { handle } => Ok(FileWriter {
                client: self,
                handle,
                chunk: WRITE_CHUNK,
                buf: Vec::new(),
                sent: VecDeque::new(),
            }),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

impl FileWriter<'_> {
    /// Chunks of at most `bytes` (less than [`WRITE_CHUNK`] bounds what
    /// one write holds in flight: four chunks).
    pub fn with_chunk(mut self, bytes: usize) -> Self {
        self.chunk = bytes.clamp(1, WRITE_CHUNK);
        self
    }

    /// Writes `data`, gathered into full chunks (the rest goes with the
    /// next write or the commit); an error is the first refusal of an
    /// earlier chunk, or the channel's.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), ClientError> {
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= self.chunk {
                let (head, rest) = data.split_at(self.chunk);
                self.send(head.to_vec()).await?;
                data = rest;
                continue;
            }
            let take = (self.chunk - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.chunk {
                let full = std::mem::take(&mut self.buf);
                self.send(full).await?;
            }
        }
        Ok(())
    }

    /// Appends `file`, from its offset to its end, after what was written
    /// before, copied by the kernel: the channel carries no bytes of it.
    /// Only on a channel that [`Client::passes_files`] (else
    /// `Unsupported`, and nothing is written).
    pub async fn write_file(&mut self, file: std::os::fd::OwnedFd) -> Result<(), ClientError> {
        self.send_gathered().await?;
        let req = Request::WriteFromFile {
            handle: self.handle,
        };
        self.queue(req, Some(file)).await
    }

    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), ClientError> {
        let req = Request::WriteChunk {
            handle: self.handle,
            data: chunk,
        };
        self.queue(req, None).await
    }

    /// Sends what is gathered towards the next chunk, if anything.
    async fn send_gathered(&mut self) -> Result<(), ClientError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let gathered = std::mem::take(&mut self.buf);
        self.send(gathered).await
    }

    /// Sends `req` (with `file`) once fewer than [`IN_FLIGHT`] are
    /// unanswered.
    async fn queue(
        &mut self,
        req: Request,
        file: Option<std::os::fd::OwnedFd>,
    ) -> Result<(), ClientError> {
        if self.sent.len() >= IN_FLIGHT {
            self.settle_one().await?;
        }
        let stream = match file {
            Some(f) => self.client.stream_with_file(req, f)?,
            None => self.client.stream(req)?,
        };
        self.sent.push_back(stream);
        Ok(())
    }

    async fn settle_one(&mut self) -> Result<(), ClientError> {
        let Some(mut s) = self.sent.pop_front() else {
            return Ok(());
        };
        match s.next().await? {
            Some(Response::Done) => Ok(()),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Disconnected),
        }
    }

    /// Waits for every chunk's answer, then renames the file into place:
    /// its `Stat`.
    pub async fn commit(mut self) -> Result<FileStat, ClientError> {
        self.send_gathered().await?;
        while !self.sent.is_empty() {
            self.settle_one().await?;
        }
        match self
            .client
            .call(Request::WriteCommit {
                handle: self.handle,
            })
            .await?
        {
            Response::Stat(st) => Ok(st),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Drops the write (its temp file is removed), whatever its chunks
    /// came to.
    pub async fn abort(mut self) {
        while !self.sent.is_empty() {
            let _ = self.settle_one().await;
        }
        let _ = self
            .client
            .call(Request::WriteAbort {
                handle: self.handle,
            })
            .await;
    }
}

//! Reading a file of the sandbox through a pipe (`ReadToFile`): the host
//! passes the pipe's writing end with the request, the init's kernel moves
//! the file's bytes into it (`sendfile`), and the host reads them from the
//! other end. A large file (a snapshot's, at a pause) then costs no frames,
//! no encoding and no copies in the init.
//!
//! The init is not trusted to close the pipe: the read ends once the
//! answer (`Copied`) says how many bytes came and that many have been
//! read, whether or not the pipe ever reports its end. A count that does
//! not match what came is an error, never a short or long file.

use crate::{Client, ClientError, ErrorKind, ErrorReply, Request, Response, ResponseStream};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

/// What the init answers (`Unsupported`) to a `ReadToFile` that came
/// without its pipe: the host then reads the channel's files as frames.
pub const NO_PIPE: &str = "the pipe to read into did not come with the request";

/// Bytes read from the pipe at once, at most; also the pipe's capacity
/// where the kernel allows it (so the init's `sendfile` fills it in large
/// pieces).
const PIECE: usize = 1 << 20;

/// A sandbox's file coming through a pipe: its bytes in pieces, then the
/// end (see [`Client::read_piped`]).
pub struct PipedRead {
    pipe: pipe::Receiver,
    answer: ResponseStream,
    path: String,
    got: u64,
    /// What the answer said came, once it came.
    copied: Option<u64>,
    /// After the end or an error.
    over: bool,
}

impl Client {
    /// Reads `path` (at most `limit` bytes, opened as `ReadFile` opens it
    /// with `strict` and `links_ok`) through a pipe passed to the init:
    /// on a channel that [`Client::passes_files`]; on another it is
    /// refused here, `Unsupported`, as when the init says the pipe did not
    /// come.
    pub fn read_piped(
        &self,
        path: &str,
        limit: u64,
        strict: bool,
        links_ok: bool,
    ) -> Result<PipedRead, ClientError> {
        let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| ClientError::Codec(std::io::Error::from(e).into()))?;
        // A larger pipe lets the init move more per call; the default (64
        // KiB) still works.
        let _ = rustix::pipe::fcntl_setpipe_size(&wr, PIECE);
        let req = Request::ReadToFile {
            path: path.to_string(),
            limit,
            strict,
            links_ok,
        };
        // The writing end goes with the request and is closed here once
        // sent: only the init holds it.
        let answer = self.stream_with_file(req, wr)?;
        let pipe = pipe::Receiver::from_owned_fd(rd).map_err(|e| ClientError::Codec(e.into()))?;
        Ok(PipedRead {
            pipe,
            answer,
            path: path.to_string(),
            got: 0,
            copied: None,
            over: false,
        })
    }
}

impl PipedRead {
    /// The next piece of the file; `Ok(None)` at its end, once the init
    /// has said how many bytes it copied and that many came. An error
    /// answer (the file is missing, not a regular file...) is
    /// `ClientError::Remote`.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        if self.over {
            return Ok(None);
        }
        let r = self.step().await;
        if !matches!(r, Ok(Some(_))) {
            self.over = true;
        }
        r
    }

    async fn step(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            if let Some(n) = self.copied {
                if self.got == n {
                    return Ok(None);
                }
            }
            let mut buf = Vec::with_capacity(PIECE);
            tokio::select! {
                read = self.pipe.read_buf(&mut buf) => {
                    let n = read.map_err(|e| ClientError::Codec(e.into()))?;
                    if n == 0 {
                        // The init closed the pipe: its answer says whether
                        // all came.
                        let copied = match self.copied {
                            Some(c) => c,
                            None => copied(&mut self.answer).await?,
                        };
                        return self.check(copied).map(|()| None);
                    }
                    self.got += n as u64;
                    if let Some(copied) = self.copied {
                        self.check_not_past(copied)?;
                    }
                    return Ok(Some(buf));
                }
                answer = copied(&mut self.answer), if self.copied.is_none() => {
                    let copied = answer?;
                    self.check_not_past(copied)?;
                    self.copied = Some(copied);
                }
            }
        }
    }

    fn check(&self, copied: u64) -> Result<(), ClientError> {
        if self.got == copied {
            return Ok(());
        }
        Err(self.mismatch(copied))
    }

    fn check_not_past(&self, copied: u64) -> Result<(), ClientError> {
        if self.got <= copied {
            return Ok(());
        }
        Err(self.mismatch(copied))
    }

    fn mismatch(&self, copied: u64) -> ClientError {
        ClientError::Remote(ErrorReply {
            kind: ErrorKind::Io,
            message: format!(
                "{}: the init copied {copied} bytes and {} came through the pipe",
                self.path, self.got
            ),
        })
    }
}

/// The init's answer: how many bytes it copied.
async fn copied(answer: &mut ResponseStream) -> Result<u64, ClientError> {
    match answer.next().await? {
        Some(Response::Copied { bytes }) => Ok(bytes),
        Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
        None => Err(ClientError::Disconnected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Frame};
    use crate::FileReader;
    use std::io::Write;

    /// A stand-in init that answers one `ReadToFile`: writes `bytes` into
    /// the pipe that came, closes it unless told to keep it, and answers
    /// `answer`. Returns the pipe if kept.
    async fn init_that(
        init: tokio::net::UnixStream,
        bytes: &'static [u8],
        keep: bool,
        answer: Response,
    ) -> Option<std::fs::File> {
        let mut init = init;
        codec::handshake(&mut init).await.unwrap();
        let (rd, mut wr) = init.into_split();
        let mut rd = FileReader::new(rd);
        let f: Frame<Request> = codec::read_frame(&mut rd).await.unwrap().unwrap();
        assert!(matches!(f.body, Request::ReadToFile { .. }), "{:?}", f.body);
        let mut pipe = std::fs::File::from(rd.take_file().expect("the pipe came"));
        pipe.write_all(bytes).unwrap();
        codec::write_frame(
            &mut wr,
            &Frame {
                id: f.id,
                body: answer,
            },
        )
        .await
        .unwrap();
        // Keep the channel open until the host is done.
        std::mem::forget(wr);
        keep.then_some(pipe)
    }

    async fn read_all(client: &Client) -> Result<Vec<u8>, ClientError> {
        let mut r = client.read_piped("/scratch/f", 1 << 20, true, true)?;
        let mut all = Vec::new();
        while let Some(piece) = r.next().await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    #[tokio::test]
    async fn a_file_comes_whole_through_the_pipe() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(init_that(
            init,
            b"hello",
            false,
            Response::Copied { bytes: 5 },
        ));
        let client = Client::connect_passing_files(host).await.unwrap();
        assert_eq!(read_all(&client).await.unwrap(), b"hello");
        peer.await.unwrap();
    }

    /// An init that keeps the pipe open after its answer does not hold the
    /// read up: it ends once the bytes the answer counts have come.
    #[tokio::test]
    async fn a_pipe_kept_open_does_not_hang_the_read() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(init_that(
            init,
            b"hello",
            true,
            Response::Copied { bytes: 5 },
        ));
        let client = Client::connect_passing_files(host).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), read_all(&client))
            .await
            .expect("the read ended with the pipe still open");
        assert_eq!(got.unwrap(), b"hello");
        assert!(peer.await.unwrap().is_some(), "the pipe was kept open");
    }

    /// A count that is not what came is an error, short or long.
    #[tokio::test]
    async fn a_wrong_count_is_an_error() {
        for (bytes, copied) in [(&b"hello"[..], 9), (&b"hello"[..], 3)] {
            let (host, init) = tokio::net::UnixStream::pair().unwrap();
            let peer = tokio::spawn(init_that(
                init,
                bytes,
                false,
                Response::Copied { bytes: copied },
            ));
            let client = Client::connect_passing_files(host).await.unwrap();
            let r = read_all(&client).await;
            assert!(
                matches!(&r, Err(ClientError::Remote(e)) if e.kind == ErrorKind::Io && e.message.contains("came through the pipe")),
                "copied {copied}: {r:?}"
            );
            peer.await.unwrap();
        }
    }

    /// The init's error answer is the read's error (a missing file is
    /// `NotFound`, as for `ReadFile`).
    #[tokio::test]
    async fn an_error_answer_is_the_reads_error() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(init_that(
            init,
            b"",
            false,
            Response::error(ErrorKind::NotFound, "/scratch/f: no such file"),
        ));
        let client = Client::connect_passing_files(host).await.unwrap();
        let r = read_all(&client).await;
        assert!(
            matches!(&r, Err(ClientError::Remote(e)) if e.kind == ErrorKind::NotFound),
            "{r:?}"
        );
        peer.await.unwrap();
    }
}

//! Many path operations in one round trip.
//!
//! Putting a snapshot's files into a new sandbox is dozens of small steps
//! (make a directory, write a small file, date it...), each a round trip
//! to the init when sent alone; on gVisor, where every step of the init's
//! event loop is a trap into the Sentry, a small snapshot cost ~45 ms of
//! them. A [`Request::Batch`] carries the steps together and the init runs
//! them in order on one thread, so they cost one round trip.

use crate::client::{Client, ClientError};
use crate::messages::{Request, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Operations one `Batch` may carry (the init refuses more).
pub const MAX_BATCH_OPS: usize = 1024;
/// Bytes of operations (paths, file contents) the client puts in one
/// `Batch`, well under a frame's limit; more go in the next.
pub const BATCH_BYTES: usize = 1 << 20;
/// Once its answers come to this many bytes, the init runs no more of a
/// batch's operations (the host sends them again), so the answer fits in
/// one frame whatever the directories listed hold.
pub const BATCH_ANSWER_BYTES: usize = 1 << 20;

/// One path operation of a [`Request::Batch`], answered as the request of
/// the same name is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOp {
    /// -> `Entries`.
    ListDir { path: String },
    /// `lstat` -> `Stat`.
    Stat { path: String },
    /// -> `Done`.
    Mkdir { path: String, parents: bool },
    /// -> `Done`.
    Remove { path: String, recursive: bool },
    /// -> `Done`.
    Symlink { target: Vec<u8>, path: String },
    /// -> `Done`.
    SetMeta {
        path: String,
        mode: Option<u32>,
        mtime_ns: Option<i64>,
    },
    /// A whole small file, written as `WriteOpen`..`WriteCommit` write one
    /// (a temp file renamed over `path`), with exactly `mode` and dated
    /// `mtime_ns` -> `Done`.
    PutFile {
        path: String,
        mode: u32,
        mtime_ns: i64,
        data: Bytes,
    },
}

impl BatchOp {
    /// The path it works on.
    pub fn path(&self) -> &str {
        match self {
            BatchOp::ListDir { path }
            | BatchOp::Stat { path }
            | BatchOp::Mkdir { path, .. }
            | BatchOp::Remove { path, .. }
            | BatchOp::Symlink { path, .. }
            | BatchOp::SetMeta { path, .. }
            | BatchOp::PutFile { path, .. } => path,
        }
    }

    /// Bytes this operation adds to a batch (what [`BATCH_BYTES`] counts).
    pub fn size(&self) -> usize {
        let body = match self {
            BatchOp::ListDir { path }
            | BatchOp::Stat { path }
            | BatchOp::Mkdir { path, .. }
            | BatchOp::Remove { path, .. }
            | BatchOp::SetMeta { path, .. } => path.len(),
            BatchOp::Symlink { target, path } => target.len() + path.len(),
            BatchOp::PutFile { path, data, .. } => path.len() + data.len(),
        };
        body + 32
    }
}

/// An operation's answer: what it answered, or the init's refusal.
pub type BatchAnswer = Result<Response, ClientError>;

impl Client {
    /// Runs `ops` in order, as few `Batch` requests as their size allows,
    /// and gives back each one with its answer, in the same order. An
    /// operation's failure is its answer; the `Err` is the channel's own.
    pub async fn batch(
        &self,
        ops: Vec<BatchOp>,
    ) -> Result<Vec<(BatchOp, BatchAnswer)>, ClientError> {
        let mut answers = Vec::with_capacity(ops.len());
        let mut rest = ops.into_iter().peekable();
        while rest.peek().is_some() {
            let mut part = Vec::new();
            let mut bytes = 0;
            while let Some(op) = rest.peek() {
                let full = part.len() == MAX_BATCH_OPS || bytes + op.size() > BATCH_BYTES;
                if full && !part.is_empty() {
                    break;
                }
                bytes += op.size();
                part.extend(rest.next());
            }
            // Sent again from the first the init did not run (a copy of
            // paths; a file's bytes are shared).
            while !part.is_empty() {
                let got = match self.call(Request::Batch(part.clone())).await? {
                    Response::Batch(got) if !got.is_empty() && got.len() <= part.len() => got,
                    other => {
                        return Err(ClientError::Unexpected(format!(
                            "{} answers to a batch of {}",
                            match other {
                                Response::Batch(got) => got.len().to_string(),
                                o => format!("{o:?} instead of"),
                            },
                            part.len()
                        )))
                    }
                };
                let ran = part.drain(..got.len());
                answers.extend(ran.zip(got).map(|(op, r)| match r {
                    Response::Error(e) => (op, Err(ClientError::Remote(e))),
                    ok => (op, Ok(ok)),
                }));
            }
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Frame};
    use crate::ErrorKind;

    /// A stand-in init that answers at most `runs` operations of each
    /// batch (each `Mkdir` with `Done`, anything else with an error) until
    /// it has answered `total` (or answered none), and returns the sizes
    /// of the batches it got.
    async fn init_that_runs(init: tokio::net::UnixStream, runs: usize, total: usize) -> Vec<usize> {
        let mut init = init;
        codec::handshake(&mut init).await.unwrap();
        let (mut rd, mut wr) = init.into_split();
        let mut sizes = Vec::new();
        let mut answered = 0;
        while answered < total {
            let f = codec::read_frame::<_, Request>(&mut rd)
                .await
                .unwrap()
                .unwrap();
            let Request::Batch(ops) = f.body else {
                panic!("not a batch: {:?}", f.body)
            };
            sizes.push(ops.len());
            let answers = ops
                .iter()
                .take(runs)
                .map(|op| match op {
                    BatchOp::Mkdir { .. } => Response::Done,
                    _ => Response::error(ErrorKind::NotFound, "no"),
                })
                .collect::<Vec<_>>();
            answered += answers.len();
            let none = answers.is_empty();
            let body = Response::Batch(answers);
            codec::write_frame(&mut wr, &Frame { id: f.id, body })
                .await
                .unwrap();
            if none {
                break;
            }
        }
        sizes
    }

    fn mkdir(i: usize) -> BatchOp {
        BatchOp::Mkdir {
            path: format!("/scratch/{i}"),
            parents: false,
        }
    }

    /// Operations the init did not run are sent again, from the first of
    /// them, and every answer comes back in the order of the operations.
    #[tokio::test]
    async fn what_the_init_did_not_run_is_sent_again() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(init_that_runs(init, 2, 6));
        let client = Client::connect(host).await.unwrap();
        let mut ops: Vec<BatchOp> = (0..5).map(mkdir).collect();
        ops.insert(3, BatchOp::Stat { path: "/x".into() });
        let answers = client.batch(ops.clone()).await.unwrap();
        let kinds: Vec<Option<ErrorKind>> = answers
            .iter()
            .map(|(_, a)| a.as_ref().err().and_then(ClientError::remote_kind))
            .collect();
        let no = Some(ErrorKind::NotFound);
        assert_eq!(kinds, [None, None, None, no, None, None]);
        let back: Vec<BatchOp> = answers.into_iter().map(|(op, _)| op).collect();
        assert_eq!(back, ops);
        drop(client);
        assert_eq!(peer.await.unwrap(), [6, 4, 2]);
    }

    /// Large operations go in several batches, none over [`BATCH_BYTES`]
    /// unless one operation alone is.
    #[tokio::test]
    async fn large_operations_are_split_across_batches() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(init_that_runs(init, usize::MAX, 7));
        let client = Client::connect(host).await.unwrap();
        let file = |i: usize| BatchOp::PutFile {
            path: format!("/scratch/{i}"),
            mode: 0o644,
            mtime_ns: 0,
            data: Bytes::from(vec![0; BATCH_BYTES / 3]),
        };
        let ops: Vec<BatchOp> = (0..7).map(file).collect();
        assert_eq!(client.batch(ops).await.unwrap().len(), 7);
        drop(client);
        assert_eq!(peer.await.unwrap(), [2, 2, 2, 1]);
    }

    /// An answer with no answers (or more than asked) is the channel's
    /// error, not a loop.
    #[tokio::test]
    async fn an_empty_answer_is_an_error() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(init_that_runs(init, 0, 1));
        let client = Client::connect(host).await.unwrap();
        let r = client.batch(vec![mkdir(1)]).await;
        assert!(matches!(r, Err(ClientError::Unexpected(_))), "{r:?}");
        drop(client);
        peer.await.unwrap();
    }
}

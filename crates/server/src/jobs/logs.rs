//! A job's log: stdout and stderr records in the order they arrived, in a
//! local file while the job runs (so it can be followed) and in the object
//! store once it ends.
//!
//! Format: records of `tag (1 byte: 1 stdout, 2 stderr) | u32 LE length |
//! bytes`, appended as the command prints.

use crate::secrets::{MaskStream, Masker};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Which records a reader wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    Both,
    Stdout,
    Stderr,
}

impl Streams {
    pub fn parse(s: Option<&str>) -> Option<Streams> {
        Some(match s {
            None | Some("both") => Streams::Both,
            Some("stdout") => Streams::Stdout,
            Some("stderr") => Streams::Stderr,
            Some(_) => return None,
        })
    }

    fn wants(self, tag: u8) -> bool {
        match self {
            Streams::Both => true,
            Streams::Stdout => tag == STDOUT,
            Streams::Stderr => tag == STDERR,
        }
    }
}

pub fn path(dir: &Path, review: &str) -> PathBuf {
    dir.join(format!("{review}.log"))
}

pub struct LogWriter {
    file: tokio::fs::File,
    pub bytes: u64,
    /// The command's output stops being kept past this many bytes of log
    /// (the operator's `[limits] max_job_log_bytes`).
    cap: u64,
    /// Output was dropped because of `cap`.
    pub truncated: bool,
}

impl LogWriter {
    /// Opens for appending (a retry continues the same log), without a cap
    /// (Warden's own notes).
    pub async fn open(path: &Path) -> std::io::Result<LogWriter> {
        LogWriter::open_capped(path, u64::MAX).await
    }

    /// Opens for appending; the command's output is kept up to `cap` bytes
    /// of log in all, attempts together.
    pub async fn open_capped(path: &Path, cap: u64) -> std::io::Result<LogWriter> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let bytes = file.metadata().await?.len();
        Ok(LogWriter {
            file,
            bytes,
            cap,
            truncated: bytes >= cap,
        })
    }

    /// The command's output: dropped once the log reached its cap (a note
    /// says so, once).
    pub async fn write(&mut self, tag: u8, data: &[u8]) -> std::io::Result<()> {
        // Once anything was dropped, everything after is too: a log with a
        // gap and then more output would read as if nothing was missing.
        if self.truncated || self.bytes.saturating_add(5 + data.len() as u64) > self.cap {
            if !self.truncated {
                self.truncated = true;
                let cap = self.cap;
                self.note(&format!(
                    "the log reached its limit of {cap} bytes; further output is dropped"
                ))
                .await?;
            }
            return Ok(());
        }
        self.record(tag, data).await
    }

    async fn record(&mut self, tag: u8, data: &[u8]) -> std::io::Result<()> {
        let mut rec = Vec::with_capacity(5 + data.len());
        rec.push(tag);
        rec.extend_from_slice(&(data.len() as u32).to_le_bytes());
        rec.extend_from_slice(data);
        self.file.write_all(&rec).await?;
        self.bytes += rec.len() as u64;
        Ok(())
    }

    /// A line of Warden's own in the log (attempt starts, retries); kept
    /// past the cap (they are few and short).
    pub async fn note(&mut self, text: &str) -> std::io::Result<()> {
        self.record(STDERR, format!("[warden] {text}\n").as_bytes())
            .await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().await
    }
}

/// A job's log with the values of its secrets masked in both streams (see
/// `secrets::mask`): what reaches the file, and so the object store, never
/// holds them.
pub struct MaskedLog {
    log: LogWriter,
    out: MaskStream,
    err: MaskStream,
}

impl MaskedLog {
    pub fn new(log: LogWriter, masker: Option<Arc<Masker>>) -> MaskedLog {
        MaskedLog {
            log,
            out: MaskStream::new(masker.clone()),
            err: MaskStream::new(masker),
        }
    }

    /// What the command printed on `tag`'s stream, masked; a possible start
    /// of a value waits for the next chunk or [`MaskedLog::end_streams`].
    pub async fn write(&mut self, tag: u8, data: &[u8]) -> std::io::Result<()> {
        let stream = if tag == STDOUT {
            &mut self.out
        } else {
            &mut self.err
        };
        let data = stream.push(data);
        if data.is_empty() {
            return Ok(());
        }
        self.log.write(tag, &data).await
    }

    /// The command's output ended: writes what was held back.
    pub async fn end_streams(&mut self) -> std::io::Result<()> {
        for (tag, stream) in [(STDOUT, &mut self.out), (STDERR, &mut self.err)] {
            let rest = stream.finish();
            if !rest.is_empty() {
                self.log.write(tag, &rest).await?;
            }
        }
        Ok(())
    }

    pub async fn note(&mut self, text: &str) -> std::io::Result<()> {
        self.log.note(text).await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush().await
    }

    /// Output was dropped at the log's cap.
    pub fn truncated(&self) -> bool {
        self.log.truncated
    }
}

/// Decodes the complete records in `buf` (from its start), appending the
/// wanted bytes to `out`; returns how many bytes of `buf` were consumed.
pub fn decode(buf: &[u8], streams: Streams, out: &mut Vec<u8>) -> usize {
    let mut at = 0;
    while buf.len() >= at + 5 {
        let tag = buf[at];
        let len = u32::from_le_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if buf.len() < at + 5 + len {
            break;
        }
        if streams.wants(tag) {
            out.extend_from_slice(&buf[at + 5..at + 5 + len]);
        }
        at += 5 + len;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip_and_partial_records_wait() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "rev_x");
        let mut w = LogWriter::open(&p).await.unwrap();
        w.write(STDOUT, b"out1 ").await.unwrap();
        w.write(STDERR, b"err1 ").await.unwrap();
        w.write(STDOUT, b"out2").await.unwrap();
        w.flush().await.unwrap();
        let buf = std::fs::read(&p).unwrap();
        let mut all = Vec::new();
        assert_eq!(decode(&buf, Streams::Both, &mut all), buf.len());
        assert_eq!(all, b"out1 err1 out2");
        let mut err = Vec::new();
        decode(&buf, Streams::Stderr, &mut err);
        assert_eq!(err, b"err1 ");
        let mut part = Vec::new();
        let n = decode(&buf[..buf.len() - 2], Streams::Both, &mut part);
        assert_eq!(part, b"out1 err1 ");
        assert!(n < buf.len() - 2);
    }

    #[tokio::test]
    async fn output_past_the_cap_is_dropped_with_one_note() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "rev_c");
        let mut w = LogWriter::open_capped(&p, 64).await.unwrap();
        w.write(STDOUT, &[b'a'; 40]).await.unwrap();
        assert!(!w.truncated);
        for _ in 0..100 {
            w.write(STDOUT, &[b'b'; 40]).await.unwrap();
        }
        // Small enough to fit the room left, but after a drop: dropped too.
        w.write(STDOUT, b"c").await.unwrap();
        w.flush().await.unwrap();
        assert!(w.truncated);
        let buf = std::fs::read(&p).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        decode(&buf, Streams::Stdout, &mut out);
        decode(&buf, Streams::Stderr, &mut err);
        assert_eq!(out, [b'a'; 40]);
        let err = String::from_utf8(err).unwrap();
        assert_eq!(err.matches("limit of 64 bytes").count(), 1, "{err}");
        // A retry continues the same log, already full.
        let again = LogWriter::open_capped(&p, 64).await.unwrap();
        assert!(again.truncated);
    }

    #[tokio::test]
    async fn secrets_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "rev_m");
        let masker = Masker::new(vec![zeroize::Zeroizing::new(b"s3cr3t-value".to_vec())]);
        let mut w = MaskedLog::new(LogWriter::open(&p).await.unwrap(), masker);
        w.write(STDOUT, b"key=s3cr3t").await.unwrap();
        w.write(STDERR, b"s3cr3t-val").await.unwrap();
        w.write(STDOUT, b"-value\n").await.unwrap();
        w.write(STDERR, b"ue!").await.unwrap();
        w.end_streams().await.unwrap();
        w.flush().await.unwrap();
        let buf = std::fs::read(&p).unwrap();
        assert!(!buf.windows(12).any(|x| x == b"s3cr3t-value"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        decode(&buf, Streams::Stdout, &mut out);
        decode(&buf, Streams::Stderr, &mut err);
        assert_eq!((&out[..], &err[..]), (&b"key=***\n"[..], &b"***!"[..]));
    }
}

//! The SHA-256 of an object as it streams in. A large object's hash is the
//! longest single step of storing it (~70 ms for 100 MiB here, against ~40
//! ms to read and write it), so from its second chunk on it is computed on
//! a blocking thread beside the reading and writing; a one-chunk object
//! (most of them) is hashed in place and costs no thread.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Chunks handed to the hashing thread and not yet hashed, at most.
const QUEUED: usize = 4;

pub(crate) struct StreamHash {
    state: State,
}

enum State {
    /// No chunk or one so far, hashed here.
    Here { hasher: Sha256, chunks: usize },
    /// The rest go to the thread.
    Thread {
        chunks: mpsc::Sender<Bytes>,
        done: JoinHandle<Sha256>,
    },
}

impl StreamHash {
    pub(crate) fn new() -> Self {
        StreamHash {
            state: State::Here {
                hasher: Sha256::new(),
                chunks: 0,
            },
        }
    }

    /// Adds `chunk`: waits while the thread is [`QUEUED`] chunks behind.
    pub(crate) async fn update(&mut self, chunk: &Bytes) -> std::io::Result<()> {
        match &mut self.state {
            State::Here { hasher, chunks } if *chunks == 0 => {
                hasher.update(chunk);
                *chunks = 1;
                return Ok(());
            }
            State::Here { hasher, .. } => {
                let mut hasher = std::mem::take(hasher);
                let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUED);
                let done = tokio::task::spawn_blocking(move || {
                    while let Some(c) = rx.blocking_recv() {
                        hasher.update(&c);
                    }
                    hasher
                });
                self.state = State::Thread { chunks: tx, done };
            }
            State::Thread { .. } => {}
        }
        let State::Thread { chunks, .. } = &self.state else {
            unreachable!("switched to the thread above")
        };
        chunks
            .send(chunk.clone())
            .await
            .map_err(|_| std::io::Error::other("the hashing thread ended early"))
    }

    /// The hash, as lowercase hex.
    pub(crate) async fn finish(self) -> std::io::Result<String> {
        let hasher = match self.state {
            State::Here { hasher, .. } => hasher,
            State::Thread { chunks, done } => {
                drop(chunks);
                done.await.map_err(std::io::Error::other)?
            }
        };
        Ok(hex::encode(hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In place or on the thread, the hash is the one of all the bytes in
    /// order.
    #[tokio::test]
    async fn the_hash_is_of_every_chunk_in_order() {
        for pieces in [0usize, 1, 2, 9] {
            let chunks: Vec<Bytes> = (0..pieces)
                .map(|i| Bytes::from(vec![i as u8; 1000 + i]))
                .collect();
            let mut h = StreamHash::new();
            let mut all = Vec::new();
            for c in &chunks {
                h.update(c).await.unwrap();
                all.extend_from_slice(c);
            }
            let want = hex::encode(Sha256::digest(&all));
            assert_eq!(h.finish().await.unwrap(), want, "{pieces} chunks");
        }
    }
}

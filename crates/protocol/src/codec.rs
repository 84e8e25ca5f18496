//! Framing: a fixed preamble, then length-prefixed postcard frames.
//!
//! ```text
//! preamble (each side, once): b"WRDN" | version: u16 LE
//! frame:                      length: u32 LE | postcard(Frame<T>)   (length <= MAX_FRAME)
//! ```
//! The preamble is fixed-layout so that two sides of different versions can
//! always tell each other so, whatever a future version does to the frames.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MAGIC: [u8; 4] = *b"WRDN";
/// Sent by an init instead of its preamble when it could not set the sandbox
/// up; the rest of the stream is the reason, in UTF-8.
pub const SETUP_FAILED: [u8; 4] = *b"WERR";
/// Bumped on any incompatible change to the messages.
pub const VERSION: u16 = 9;
/// Largest payload of one output/data frame.
pub const CHUNK: usize = 64 * 1024;
/// Largest encoded frame accepted (a chunk plus headroom for metadata such
/// as a large directory listing).
pub const MAX_FRAME: usize = 4 << 20;

/// One message with the id of the request it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<T> {
    pub id: u32,
    pub body: T,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("i/o on the control channel: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer is not a Warden init/host (bad magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("protocol version mismatch: we speak {ours}, peer speaks {theirs}")]
    Version { ours: u16, theirs: u16 },
    #[error("sandbox setup failed: {0}")]
    SetupFailed(String),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
}

pub fn preamble() -> [u8; 6] {
    let v = VERSION.to_le_bytes();
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1]]
}

/// Checks a received preamble, returning the peer's version when compatible.
pub fn check_preamble(p: [u8; 6]) -> Result<u16, CodecError> {
    let magic = [p[0], p[1], p[2], p[3]];
    if magic != MAGIC {
        return Err(CodecError::BadMagic(magic));
    }
    let theirs = u16::from_le_bytes([p[4], p[5]]);
    if theirs != VERSION {
        return Err(CodecError::Version {
            ours: VERSION,
            theirs,
        });
    }
    Ok(theirs)
}

/// Sends our preamble and checks the peer's.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<u16, CodecError> {
    s.write_all(&preamble()).await?;
    s.flush().await?;
    let mut p = [0u8; 6];
    s.read_exact(&mut p).await?;
    if p[..4] == SETUP_FAILED {
        let mut msg = p[4..].to_vec();
        let _ = s.take(64 * 1024).read_to_end(&mut msg).await;
        return Err(CodecError::SetupFailed(
            String::from_utf8_lossy(&msg).trim().to_string(),
        ));
    }
    check_preamble(p)
}

/// Encodes one frame, length prefix included.
pub fn encode<T: Serialize>(frame: &Frame<T>) -> Result<Vec<u8>, CodecError> {
    let mut buf = vec![0u8; 4];
    buf = postcard::to_extend(frame, buf)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(buf)
}

/// Decodes one frame body (without its length prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<Frame<T>, CodecError> {
    Ok(postcard::from_bytes(body)?)
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    frame: &Frame<T>,
) -> Result<(), CodecError> {
    let buf = encode(frame)?;
    w.write_all(&buf).await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<Option<Frame<T>>, CodecError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

/// An init's configuration sent ahead of the preamble, by a backend that
/// would otherwise have to put it in a file or an argv (gVisor's bundle):
/// `length: u32 LE | postcard(InitConfig)`. Blocking, for the init's start.
pub fn encode_init_config(cfg: &crate::InitConfig) -> Result<Vec<u8>, CodecError> {
    let body = postcard::to_allocvec(cfg)?;
    if body.len() > MAX_FRAME {
        return Err(CodecError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Asks an init waiting for its configuration to warm the sandbox up
/// first (a gVisor pool's sandbox, before it is handed out): a zero-length
/// configuration frame, which no configuration encodes to. The init runs a
/// few of the image's programs, ends every process they left, and answers
/// [`WARMED`]; then it waits for its configuration as before.
pub const WARM_UP: [u8; 4] = [0; 4];
/// An init's answer to [`WARM_UP`], before any preamble.
pub const WARMED: [u8; 4] = *b"WARM";

/// What comes on an init's control channel before its preamble: see
/// [`encode_init_config`] and [`WARM_UP`].
#[derive(Debug, PartialEq, Eq)]
pub enum BeforeConfig {
    WarmUp,
    Config(crate::InitConfig),
}

/// Reads what [`encode_init_config`] wrote, or a [`WARM_UP`].
pub fn read_init_config(r: &mut impl std::io::Read) -> Result<BeforeConfig, CodecError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    if len == WARM_UP {
        return Ok(BeforeConfig::WarmUp);
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(BeforeConfig::Config(postcard::from_bytes(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::*;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(id: u32, body: T) {
        let frame = Frame { id, body };
        let bytes = encode(&frame).unwrap();
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        let back: Frame<T> = decode(&bytes[4..]).unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn requests_round_trip() {
        let mut exec = ExecRequest::shell("echo hi; exit 3");
        exec.env.push(("A".into(), "b".into()));
        exec.cwd = Some("/scratch".into());
        exec.timeout_ms = Some(1500);
        exec.session = Some("s1".into());
        round_trip(1, Request::Exec(exec));
        round_trip(2, Request::Exec(ExecRequest::argv(["ls", "-la", "/"])));
        round_trip(
            u32::MAX,
            Request::Stdin {
                pid: 7,
                data: vec![0, 255, 10],
            },
        );
        round_trip(
            3,
            Request::ReadFile {
                path: "/output/a".into(),
                offset: 5,
                limit: Some(9),
                strict: true,
                links_ok: false,
            },
        );
        round_trip(
            4,
            Request::Credit {
                stream: 1,
                bytes: 65536,
            },
        );
        round_trip(5, Request::Shutdown);
        round_trip(
            6,
            Request::ReadToFile {
                path: "/scratch/a".into(),
                limit: u64::MAX,
                strict: true,
                links_ok: true,
            },
        );
        round_trip(
            7,
            Request::Batch(vec![
                crate::BatchOp::Mkdir {
                    path: "/scratch/d".into(),
                    parents: false,
                },
                crate::BatchOp::PutFile {
                    path: "/scratch/d/f".into(),
                    mode: 0o640,
                    mtime_ns: -1,
                    data: bytes::Bytes::from(vec![7; 300]),
                },
                crate::BatchOp::SetMeta {
                    path: "/scratch/d".into(),
                    mode: Some(0o500),
                    mtime_ns: Some(1 << 60),
                },
            ]),
        );
    }

    #[test]
    fn responses_round_trip() {
        round_trip(1, Response::Stdout(vec![1; CHUNK]));
        round_trip(1, Response::Copied { bytes: 1 << 40 });
        round_trip(
            1,
            Response::Batch(vec![
                Response::Done,
                Response::error(ErrorKind::NoSpace, "full"),
            ]),
        );
        round_trip(
            1,
            Response::Exited(ExitStatus {
                code: None,
                signal: Some(9),
                timed_out: true,
            }),
        );
        let stat = FileStat {
            kind: FileKind::Symlink,
            size: 3,
            mode: 0o777,
            uid: 1000,
            gid: 1000,
            nlink: 1,
            mtime: -1,
            link_target: Some(b"/etc/passwd".to_vec()),
            resolved: Some(crate::Resolved {
                path: b"/etc/passwd".to_vec(),
                kind: FileKind::File,
                mode: 0o644,
            }),
            meta: vec![("author".into(), "ünïcode".into())],
        };
        round_trip(
            2,
            Response::Entries(vec![DirEntry {
                name: vec![0xff, b'\n', b'.'],
                stat,
            }]),
        );
        round_trip(3, Response::error(ErrorKind::NotFound, "no such file"));
    }

    #[test]
    fn watch_messages_round_trip() {
        round_trip(
            6,
            Request::Watch {
                path: "/scratch/dir".into(),
                recursive: true,
            },
        );
        round_trip(7, Request::Cancel { stream: 6 });
        round_trip(6, Response::Watching);
        let events = vec![
            FsEvent {
                kind: FsEventKind::Create,
                name: b"sub/file.txt".to_vec(),
            },
            FsEvent {
                kind: FsEventKind::Write,
                name: vec![0xff, b'\n'],
            },
            FsEvent {
                kind: FsEventKind::Remove,
                name: Vec::new(),
            },
            FsEvent {
                kind: FsEventKind::Rename,
                name: b"a".to_vec(),
            },
            FsEvent {
                kind: FsEventKind::Chmod,
                name: b"b".to_vec(),
            },
        ];
        let cost: usize = events.iter().map(FsEvent::cost).sum();
        let resp = Response::FsEvents(events);
        // Events are flow-controlled like output, and never end the stream.
        assert_eq!(resp.payload_len(), cost);
        assert!(!resp.is_terminal() && !Response::Watching.is_terminal());
        round_trip(6, resp);
        round_trip(6, Response::FsEvents(Vec::new()));
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        // Truncated, garbage, and an out-of-range enum tag.
        for bad in [&[][..], &[1u8][..], &[0xff; 16][..], &[1, 200, 1][..]] {
            assert!(decode::<Request>(bad).is_err(), "{bad:?} decoded");
        }
        // A truncated valid frame is an error, not a shorter message.
        let bytes = encode(&Frame {
            id: 1,
            body: Request::Stdin {
                pid: 1,
                data: vec![9; 10],
            },
        })
        .unwrap();
        assert!(decode::<Request>(&bytes[4..bytes.len() - 1]).is_err());
    }

    #[test]
    fn oversized_frames_are_refused() {
        let frame = Frame {
            id: 1,
            body: Response::Data(vec![0; MAX_FRAME + 1]),
        };
        assert!(matches!(encode(&frame), Err(CodecError::TooLarge(_))));
    }

    #[tokio::test]
    async fn stream_read_rejects_huge_length_before_allocating() {
        let mut data: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 0, 0];
        let r = read_frame::<_, Request>(&mut data).await;
        assert!(matches!(r, Err(CodecError::TooLarge(_))));
        let mut empty: &[u8] = &[];
        assert!(read_frame::<_, Request>(&mut empty)
            .await
            .unwrap()
            .is_none());
    }

    #[test]
    fn preamble_checks_magic_and_version() {
        assert_eq!(check_preamble(preamble()).unwrap(), VERSION);
        assert!(matches!(
            check_preamble(*b"HTTP/1"),
            Err(CodecError::BadMagic(_))
        ));
        let mut p = preamble();
        p[4] = p[4].wrapping_add(1);
        assert!(matches!(check_preamble(p), Err(CodecError::Version { .. })));
    }

    #[test]
    fn init_config_round_trips_and_refuses_oversized_lengths() {
        let cfg = crate::InitConfig {
            env: vec![("K".into(), "v".into())],
            workdir: "/scratch".into(),
        };
        let bytes = encode_init_config(&cfg).unwrap();
        assert_eq!(
            read_init_config(&mut &bytes[..]).unwrap(),
            BeforeConfig::Config(cfg.clone())
        );
        // Even an empty configuration is no warm-up request.
        let empty = InitConfig {
            env: vec![],
            workdir: String::new(),
        };
        let bytes = encode_init_config(&empty).unwrap();
        assert_ne!(bytes[..4], WARM_UP);
        assert_eq!(
            read_init_config(&mut &bytes[..]).unwrap(),
            BeforeConfig::Config(empty)
        );
        assert_eq!(
            read_init_config(&mut &WARM_UP[..]).unwrap(),
            BeforeConfig::WarmUp
        );
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(matches!(
            read_init_config(&mut &huge[..]),
            Err(CodecError::TooLarge(_))
        ));
        assert!(read_init_config(&mut &bytes[..bytes.len() - 1]).is_err());
    }
}

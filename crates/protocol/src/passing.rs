//! Files passed over the control channel (`SCM_RIGHTS`): a request that
//! names a whole file ([`crate::Request::WriteFromFile`]) carries the
//! file's descriptor with its frame's first bytes, and the kernel copies
//! the bytes instead of the channel carrying them.
//!
//! Both ends are Unix stream sockets. The host sends a frame that carries
//! a file with `sendmsg` (the descriptor rides on the bytes of that call);
//! the init reads the channel only with `recvmsg`, which hands over every
//! descriptor that came (a plain `read` would close them) and never reads
//! past the bytes they came with, so descriptors queue in the order of
//! their frames.
//!
//! Both tiers' channels pass them: the native tier's is a socketpair
//! between the host and the init; the gVisor tier's is a host socket
//! donated to the sandbox, and the Sentry imports a descriptor that comes
//! on it as a host file its init reads. Should one ever not arrive, the
//! init refuses the request (`Unsupported`) and the host sends that
//! channel's files as frames from then on
//! (`Client::stop_passing_files`).

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::{AsyncRead, Interest, ReadBuf};

/// Descriptors received and not yet claimed, at most: the host sends one
/// per request and the init claims it as it reads that request, so more
/// waiting means a confused peer; the surplus is closed.
const MAX_WAITING: usize = 16;

/// The host's side: sends a frame with a file.
pub(crate) struct FileSender {
    /// A duplicate of the channel's socket (its own registration with the
    /// event loop; the writer's half writes everything else).
    socket: tokio::net::UnixStream,
}

impl FileSender {
    pub(crate) fn new(socket: &tokio::net::UnixStream) -> io::Result<Self> {
        let dup = std::os::unix::net::UnixStream::from(socket.as_fd().try_clone_to_owned()?);
        Ok(FileSender {
            socket: tokio::net::UnixStream::from_std(dup)?,
        })
    }

    /// Sends the start of `bytes` with `file` attached: how many bytes went
    /// (at least one; the caller writes the rest as usual).
    pub(crate) async fn send(&self, bytes: &[u8], file: &OwnedFd) -> io::Result<usize> {
        loop {
            self.socket.writable().await?;
            let sent = self.socket.try_io(Interest::WRITABLE, || {
                let fds = [file.as_fd()];
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                    return Err(io::Error::other("no room for a descriptor"));
                }
                sendmsg(
                    &self.socket,
                    &[IoSlice::new(bytes)],
                    &mut control,
                    SendFlags::NOSIGNAL,
                )
                .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The init's side: the channel's reading half, read with `recvmsg`; the
/// descriptors that come wait in order for [`FileReader::take_file`].
pub struct FileReader {
    inner: tokio::net::unix::OwnedReadHalf,
    files: VecDeque<OwnedFd>,
}

impl FileReader {
    pub fn new(inner: tokio::net::unix::OwnedReadHalf) -> Self {
        FileReader {
            inner,
            files: VecDeque::new(),
        }
    }

    /// The half it reads, and the files nobody claimed (closed).
    pub fn into_inner(self) -> tokio::net::unix::OwnedReadHalf {
        self.inner
    }

    /// The first file received and not yet claimed: the one that came with
    /// the request just read, if that request carried one.
    pub fn take_file(&mut self) -> Option<OwnedFd> {
        self.files.pop_front()
    }
}

/// One `recvmsg` into `buf`'s unfilled part; descriptors that came go to
/// the back of `files`.
fn recv_into(
    files: &mut VecDeque<OwnedFd>,
    socket: &tokio::net::UnixStream,
    buf: &mut ReadBuf<'_>,
) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        socket,
        &mut [IoSliceMut::new(buf.initialize_unfilled())],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for fd in fds {
                if files.len() < MAX_WAITING {
                    files.push_back(fd);
                }
            }
        }
    }
    buf.advance(got.bytes);
    Ok(got.bytes)
}

impl AsyncRead for FileReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let stream: &tokio::net::UnixStream = this.inner.as_ref();
        loop {
            ready!(stream.poll_read_ready(cx))?;
            // `try_io` clears the readiness when the call would block, so
            // the next poll waits for the socket again.
            match stream.try_io(Interest::READABLE, || {
                recv_into(&mut this.files, stream, buf)
            }) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Frame};
    use crate::{Client, Request};
    use std::io::{Read, Seek, Write};

    fn file_with(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }

    /// Files reach the init with their own requests, in order, between
    /// requests that carry none; what the host writes with them arrives
    /// whole.
    #[tokio::test]
    async fn files_come_with_their_requests_in_order() {
        let (host, init) = tokio::net::UnixStream::pair().unwrap();
        let peer = tokio::spawn(async move {
            let mut init = init;
            codec::handshake(&mut init).await.unwrap();
            let (rd, _wr) = init.into_split();
            let mut rd = FileReader::new(rd);
            let mut got = Vec::new();
            for _ in 0..4 {
                let f: Frame<Request> = codec::read_frame(&mut rd).await.unwrap().unwrap();
                let file = rd.take_file().map(|fd| {
                    let mut s = String::new();
                    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
                    s
                });
                got.push((f.body, file));
            }
            got
        });
        let client = Client::connect_passing_files(host).await.unwrap();
        assert!(client.passes_files());
        let one = Request::WriteFromFile { handle: 1 };
        let two = Request::WriteFromFile { handle: 2 };
        let _a = client.stream(Request::Ping).unwrap();
        let _b = client
            .stream_with_file(one.clone(), file_with(b"first").into())
            .unwrap();
        let _c = client.stream(Request::Ping).unwrap();
        let _d = client
            .stream_with_file(two.clone(), file_with(b"second").into())
            .unwrap();
        let got = peer.await.unwrap();
        assert_eq!(
            got,
            vec![
                (Request::Ping, None),
                (one, Some("first".to_string())),
                (Request::Ping, None),
                (two, Some("second".to_string())),
            ]
        );
    }

    /// A channel that was not made to pass files refuses to, either way
    /// (a file to write from, a pipe to read into), before anything is
    /// sent.
    #[tokio::test]
    async fn a_channel_without_passing_refuses_files() {
        let (host, mut peer) = tokio::io::duplex(1 << 16);
        let side = tokio::spawn(async move {
            codec::handshake(&mut peer).await.unwrap();
            peer
        });
        let client = Client::connect(host).await.unwrap();
        let _peer = side.await.unwrap();
        assert!(!client.passes_files());
        let r =
            client.stream_with_file(Request::WriteFromFile { handle: 1 }, file_with(b"x").into());
        assert!(
            matches!(&r, Err(crate::ClientError::Remote(e)) if e.kind == crate::ErrorKind::Unsupported),
            "{:?}",
            r.as_ref().err()
        );
        let r = client.read_piped("/scratch/f", 10, true, true);
        assert!(
            matches!(&r, Err(crate::ClientError::Remote(e)) if e.kind == crate::ErrorKind::Unsupported),
            "{:?}",
            r.as_ref().err()
        );
    }
}

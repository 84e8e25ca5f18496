//! What the host and a native sandbox's processes agree on: descriptor
//! numbers, the zygote's request and answer, the set-up message, and
//! sending descriptors over a socket. Both sides use these, so a change
//! here changes both at once.

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

/// The fds a new init finds its channels on: the control socket (the
/// protocol, and the host paths before "go") and the setup pipe.
pub const CONTROL_FD: RawFd = 3;
pub const SETUP_FD: RawFd = 4;

/// Where the init keeps the host paths' descriptors: `FIRST_FD + i` for
/// the i-th. Far above the few it has open at that point (stdio and its
/// channels).
pub const FIRST_FD: RawFd = 100;
/// Most descriptors one set-up may take (the kernel passes up to 253 in
/// one message; a spec's mounts are far fewer).
pub const MAX_FDS: usize = 64;

/// The name the init uses for the i-th host path's descriptor: a magic
/// link whose resolution needs no search permission on the path's
/// ancestors (see `init/handles.rs`).
pub fn fd_path(i: usize) -> String {
    format!("/proc/self/fd/{}", FIRST_FD as usize + i)
}

/// What the zygote (and so every native init) is called in its argv: a
/// neutral name, since every init shows the zygote's argv as
/// /proc/1/cmdline, where the binary's host path would tell the sandbox
/// where Warden is installed.
pub const ZYGOTE_ARGV0: &str = "warden-init";

/// The byte the zygote sends once it is confined and serving.
pub const READY: u8 = b'R';

/// A request to the zygote: one byte, then the user namespace's owner (the
/// slot's first host uid) as `u32` LE, with two or three fds attached (the
/// init's control socket, the read end of its setup pipe, optionally a
/// network namespace). The answer: the pid as `i32` LE (or a negated
/// errno) with the pidfd.
pub const REQUEST_LEN: usize = 5;

/// Encodes a request for a sandbox whose user namespace `owner` owns.
pub fn request(owner: u32) -> [u8; REQUEST_LEN] {
    let mut msg = [0u8; REQUEST_LEN];
    msg[0] = 1;
    msg[1..].copy_from_slice(&owner.to_le_bytes());
    msg
}

/// The owner a request names.
pub fn request_owner(msg: &[u8; REQUEST_LEN]) -> u32 {
    u32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]])
}

/// The byte the host writes on the setup pipe before the set-up: the id
/// maps and cgroup are in place.
pub const GO: u8 = b'G';

/// The byte the host sends the host paths' descriptors with.
pub const PATHS: u8 = b'F';

/// The setup message: `u32` LE length of the JSON, the JSON, then the
/// compiled seccomp filter (`warden_confine::CompiledFilter::to_bytes`).
pub fn encode_message(json: &[u8], seccomp: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(4 + json.len() + seccomp.len());
    m.extend_from_slice(&(json.len() as u32).to_le_bytes());
    m.extend_from_slice(json);
    m.extend_from_slice(seccomp);
    m
}

/// Splits a setup message into its JSON and filter parts.
pub fn decode_message(m: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(m.get(..4)?.try_into().ok()?) as usize;
    let json = m.get(4..4 + len)?;
    Some((json, &m[4 + len..]))
}

/// Sends `data` with `fds` attached (at most [`MAX_FDS`]).
pub fn send_with_fds(sock: impl AsFd, data: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other(
            "too many descriptors for one message",
        ));
    }
    sendmsg(sock, &[IoSlice::new(data)], &mut cmsg, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives up to `buf.len()` bytes and the fds attached (close-on-exec),
/// retrying on EINTR.
pub fn recv_with_fds(sock: impl AsFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let r = loop {
        match recvmsg(
            &sock,
            &mut [IoSliceMut::new(buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    Ok((r.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_messages_round_trip_and_reject_truncation() {
        let m = encode_message(b"{\"a\":1}", &[1, 2, 3]);
        assert_eq!(
            decode_message(&m),
            Some((&b"{\"a\":1}"[..], &[1u8, 2, 3][..]))
        );
        assert_eq!(decode_message(&m[..6]), None);
        assert_eq!(decode_message(&[1, 0]), None);
    }

    #[test]
    fn requests_carry_their_owner() {
        let m = request(165_536);
        assert_eq!(m[0], 1);
        assert_eq!(request_owner(&m), 165_536);
    }

    #[test]
    fn descriptors_cross_a_socket_with_their_data() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let file = std::fs::File::open("/dev/null").expect("open /dev/null");
        send_with_fds(&a, b"x", &[file.as_fd()]).expect("send");
        let mut buf = [0u8; 4];
        let (n, fds) = recv_with_fds(&b, &mut buf).expect("receive");
        assert_eq!((n, &buf[..1], fds.len()), (1, &b"x"[..], 1));
    }
}

//! The zygote: one long-lived, single-threaded `warden-init --zygote`
//! process per runtime that clones every sandbox's init.
//!
//! Cloning from the zygote instead of from the (large, multi-threaded)
//! Warden process means the new init needs no `execve`: it is already the
//! init binary, fully loaded and initialised, so it goes straight to its
//! set-up. The zygote runs as host root with nothing but a socket to the
//! runtime; it exits when that socket closes, and the kernel reaps its
//! children itself (SIGCHLD ignored), so no zombie outlives a sandbox.
//!
//! Protocol on the socket, one exchange per sandbox:
//! runtime -> zygote: one byte and the slot's first host uid (`u32` LE),
//! with two or three fds (the init's control socket, the read end of its
//! setup pipe, and optionally a fresh network namespace from the pool, see
//! `netns.rs`); zygote -> runtime: the pid as `i32` LE (or a negated errno)
//! with the pidfd.
//!
//! With a namespace, the zygote enters it, clones without `CLONE_NEWNET` (so
//! the init starts in it), and returns to its own at once. Only the zygote
//! can do this: entering a namespace owned by the host's user namespace
//! takes the host's `CAP_SYS_ADMIN`, which the init lost with `CLONE_NEWUSER`.
//!
//! The clone runs with the zygote's *effective* uid set to the slot's first
//! host uid (real and saved uid stay 0, so it returns to root right after).
//! The kernel makes whoever creates a user namespace its owner, and charges
//! per-user counters of everything inside it (inotify instances and
//! watches, user namespaces, ...) to that owner in the parent namespace: as
//! host root, every sandbox would share host root's allowance (128 inotify
//! instances), with each other and with the host's own services. Owned by
//! the slot's uid, each sandbox has the host's per-user allowance to itself.
//! The child's ids end up as before: once its maps exist it becomes uid 0 of
//! its namespace, which is the slot's first host uid.

use super::posix_spawn;
use super::spawn::{self, SpawnError};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use warden_confine::CompiledFilter;

fn sys_err(what: &'static str) -> impl FnOnce(std::io::Error) -> SpawnError {
    move |source| SpawnError::Sys { what, source }
}

/// Sends `data` with `fds` attached.
fn send_with_fds(
    sock: impl AsFd,
    data: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> std::io::Result<()> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("control message buffer too small"));
    }
    sendmsg(sock, &[IoSlice::new(data)], &mut cmsg, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives up to `buf.len()` bytes and the fds attached (close-on-exec).
fn recv_with_fds(sock: impl AsFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let r = recvmsg(
        sock,
        &mut [IoSliceMut::new(buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    Ok((r.bytes, fds))
}

/// The runtime's handle on its zygote.
pub struct Zygote {
    sock: Mutex<Channel>,
    pid: libc::pid_t,
}

struct Channel {
    stream: UnixStream,
    /// Whether the zygote has said it is confined. Heard at the first
    /// request rather than at the start, so that a `warden run` gets its
    /// sandbox's cgroup ready while the zygote attaches its filter.
    ready: bool,
}

impl Channel {
    fn confirm_ready(&mut self) -> Result<(), SpawnError> {
        if self.ready {
            return Ok(());
        }
        let mut byte = [0u8; 1];
        if !matches!((&self.stream).read(&mut byte), Ok(1)) || byte[0] != READY {
            return Err(SpawnError::Sys {
                what: "start the zygote",
                source: std::io::Error::other("it could not attach its seccomp filter"),
            });
        }
        self.ready = true;
        Ok(())
    }
}

/// A zygote started and not yet confined: it waits for its filter.
pub struct Unconfined {
    /// First, so it goes first: a zygote still waiting for its filter
    /// exits at the end of the pipe, and only then can it be collected.
    filter: std::fs::File,
    zygote: Zygote,
}

impl Zygote {
    /// Starts `warden-init --zygote`. It starts its own session (so a
    /// terminal's Ctrl-C aimed at Warden does not reach it) and waits for
    /// the filter [`Unconfined::confine`] hands it, so that the filter can
    /// be compiled while the zygote's binary is being loaded.
    ///
    /// `posix_spawn` rather than `fork`: the Warden binary is large, and
    /// copying its page tables into a child that only calls `execve` costs
    /// a `warden run` most of a millisecond.
    pub fn spawn(init: &Path) -> Result<Unconfined, SpawnError> {
        let (ours, theirs) = UnixStream::pair().map_err(sys_err("socketpair"))?;
        let (filter_r, filter_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SpawnError::Sys {
                what: "pipe",
                source: e.into(),
            })?;
        // A neutral argv[0]: every init is a clone of the zygote and shows
        // its argv as /proc/1/cmdline, where the binary's host path would
        // tell the sandbox where Warden is installed.
        let argv = [ZYGOTE_ARGV0, "--zygote", "3", "--filter-fd", "4"];
        let pid = posix_spawn::spawn(init, &argv, &[theirs.as_fd(), filter_r.as_fd()])
            .map_err(sys_err("start the zygote"))?;
        Ok(Unconfined {
            zygote: Zygote {
                sock: Mutex::new(Channel {
                    stream: ours,
                    ready: false,
                }),
                pid,
            },
            filter: filter_w.into(),
        })
    }
    /// Clones a new init holding `control` and `setup` as fds 3 and 4, in
    /// the network namespace `netns` if given (else in a new one), in a
    /// user namespace owned by host uid `owner` (the slot's first uid).
    pub fn launch(
        &self,
        control: &OwnedFd,
        setup: &OwnedFd,
        netns: Option<&OwnedFd>,
        owner: u32,
    ) -> Result<(i32, OwnedFd), SpawnError> {
        let mut fds = vec![control.as_fd(), setup.as_fd()];
        fds.extend(netns.map(|n| n.as_fd()));
        let mut msg = [0u8; REQUEST_LEN];
        msg[0] = 1;
        msg[1..].copy_from_slice(&owner.to_le_bytes());
        let mut channel = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        channel.confirm_ready()?;
        let sock = &channel.stream;
        send_with_fds(sock, &msg, &fds).map_err(sys_err("hand the sandbox to the zygote"))?;
        let mut buf = [0u8; 4];
        let (n, mut fds) =
            recv_with_fds(sock, &mut buf).map_err(sys_err("hear back from the zygote"))?;
        if n != 4 {
            return Err(SpawnError::Sys {
                what: "hear back from the zygote",
                source: std::io::Error::other("the zygote has exited"),
            });
        }
        let pid = i32::from_le_bytes(buf);
        match (pid, fds.pop()) {
            (pid, Some(pidfd)) if pid > 0 => Ok((pid, pidfd)),
            // The init was cloned but its pidfd never arrived: the buffer
            // has room for it, so the kernel could not install it here —
            // this process is out of descriptors. (Without its setup the
            // init exits on its own.)
            (pid, None) if pid > 0 => Err(SpawnError::Sys {
                what: "receive the new init's pidfd",
                source: std::io::Error::from_raw_os_error(libc::EMFILE),
            }),
            (e, _) => Err(SpawnError::Sys {
                what: "clone with new namespaces",
                source: std::io::Error::from_raw_os_error(-e),
            }),
        }
    }
}

impl Unconfined {
    /// Hands the zygote `filter`, the part of the seccomp policy every
    /// sandbox inherits from it (see `warden_confine::SplitFilter`). It
    /// attaches it before it serves anything; the first request waits for
    /// that (and fails if it could not).
    pub fn confine(self, policy: &CompiledFilter) -> Result<Zygote, SpawnError> {
        let Unconfined { mut filter, zygote } = self;
        // A few KiB: the pipe holds it whole, so this never blocks.
        filter
            .write_all(&policy.to_bytes())
            .map_err(sys_err("hand the zygote its seccomp filter"))?;
        Ok(zygote)
    }
}

impl Zygote {
    /// Tells the zygote to exit (it is collected when this is dropped);
    /// launching fails from now on.
    pub fn retire(&self) {
        let channel = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = channel.stream.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // Closing our end makes the zygote exit; then collect it.
        let channel = self.sock.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = channel.stream.shutdown(std::net::Shutdown::Both);
        posix_spawn::reap(self.pid);
    }
}

/// The byte the zygote sends once it is confined and serving.
const READY: u8 = b'R';

/// What the zygote (and so every native init) is called in its argv.
pub const ZYGOTE_ARGV0: &str = "warden-init";

/// A request: one byte, then the user namespace's owner as `u32` LE.
const REQUEST_LEN: usize = 5;

/// Sets only the effective uid (raw system call: this thread alone, and no
/// libc bookkeeping in a process that is about to clone).
fn set_euid(uid: u32) -> bool {
    // SAFETY: a plain system call; -1 leaves the real and saved uid as is.
    unsafe { libc::syscall(libc::SYS_setresuid, u32::MAX, uid, u32::MAX) == 0 }
}

/// Reads the inherited part of the seccomp policy from `fd` and attaches it.
fn confine_self(fd: RawFd) -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: our launcher passed us this fd and nothing else uses it.
    let mut pipe = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes)?;
    warden_confine::apply_seccomp(&CompiledFilter::from_bytes(&bytes)?)?;
    Ok(())
}

/// The zygote's loop (in `warden-init --zygote FD --filter-fd FD`). Returns
/// only in a newly cloned child, which then continues as a sandbox's init
/// with its control channel on fd 3 and its setup pipe on fd 4.
pub fn serve(fd: RawFd, filter_fd: RawFd) {
    // Our own session: a terminal's Ctrl-C aimed at Warden must not reach
    // us (or, through us, any sandbox). We were spawned in Warden's process
    // group, so we are not a group leader and this cannot fail.
    // SAFETY: a plain system call.
    if unsafe { libc::setsid() } < 0 {
        std::process::exit(1);
    }
    // SAFETY: our launcher passed us this fd and nothing else uses it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Confined before the first clone: every init inherits the filter.
    if confine_self(filter_fd).is_err() || send_with_fds(&sock, &[READY], &[]).is_err() {
        std::process::exit(1);
    }
    // The kernel reaps our children: a sandbox's init never lingers as a
    // zombie once its pidfd has reported the exit.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // Our own network namespace, to come back to after cloning into a
    // pooled one.
    let Ok(home) = std::fs::File::open("/proc/self/ns/net") else {
        std::process::exit(1);
    };
    loop {
        let mut buf = [0u8; REQUEST_LEN];
        let (n, fds) = match recv_with_fds(&sock, &mut buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => std::process::exit(0),
        };
        if n == 0 {
            // The runtime went away.
            std::process::exit(0);
        }
        let mut fds = fds.into_iter();
        let (Some(control), Some(setup), netns, None, REQUEST_LEN) =
            (fds.next(), fds.next(), fds.next(), fds.next(), n)
        else {
            let _ = send_with_fds(&sock, &(-libc::EINVAL).to_le_bytes(), &[]);
            continue;
        };
        let owner = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]);
        // Root never owns a sandbox's namespace: that is the point.
        if owner == 0 {
            let _ = send_with_fds(&sock, &(-libc::EINVAL).to_le_bytes(), &[]);
            continue;
        }
        if let Some(ns) = &netns {
            // SAFETY: setns on an fd we were sent; we are single-threaded.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let errno = std::io::Error::last_os_error().raw_os_error();
                let _ = send_with_fds(&sock, &(-errno.unwrap_or(libc::EIO)).to_le_bytes(), &[]);
                continue;
            }
        }
        // The namespace (entered above) needs root; the clone runs as the
        // slot's uid so that its user namespace belongs to the slot.
        if !set_euid(owner) {
            let errno = std::io::Error::last_os_error().raw_os_error();
            let _ = send_with_fds(&sock, &(-errno.unwrap_or(libc::EPERM)).to_le_bytes(), &[]);
            // SAFETY: setns on our own namespace fd; single-threaded.
            if netns.is_some() && unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0
            {
                std::process::exit(1);
            }
            continue;
        }
        let cloned = spawn::clone_into_namespaces(netns.is_none());
        // Root again (the saved uid is 0) before anything else in the
        // zygote, and the effective capabilities with it; a zygote that
        // cannot is useless and stops.
        if !matches!(cloned, Ok(None)) && !set_euid(0) {
            std::process::exit(1);
        }
        if netns.is_some() && !matches!(cloned, Ok(None)) {
            // Back home before anything else: a zygote that cannot return
            // stops rather than linger in a sandbox's namespace (the
            // runtime then fails every start).
            // SAFETY: as above, on our own namespace fd.
            if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                std::process::exit(1);
            }
        }
        // Never used again: the init holds the namespace now.
        drop(netns);
        match cloned {
            Ok(None) => {
                // The new init: our children are its own business again.
                unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
                // SAFETY: a fresh single-threaded child.
                if let Err(code) =
                    unsafe { spawn::enter_child(control.as_raw_fd(), setup.as_raw_fd()) }
                {
                    std::process::exit(code);
                }
                // enter_child closed every other fd, our socket included.
                std::mem::forget(sock);
                std::mem::forget(home);
                std::mem::forget(control);
                std::mem::forget(setup);
                return;
            }
            Ok(Some((pid, pidfd))) => {
                let _ = send_with_fds(&sock, &pid.to_le_bytes(), &[pidfd.as_fd()]);
            }
            Err(SpawnError::Sys { source, .. }) => {
                let errno = source.raw_os_error().unwrap_or(libc::EIO);
                let _ = send_with_fds(&sock, &(-errno).to_le_bytes(), &[]);
            }
            Err(_) => {
                let _ = send_with_fds(&sock, &(-libc::EIO).to_le_bytes(), &[]);
            }
        }
    }
}

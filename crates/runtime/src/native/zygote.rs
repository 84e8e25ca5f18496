//! The runtime's handle on its zygote: starting `warden-init --zygote`,
//! handing it its seccomp filter, and asking it for each sandbox's init.
//! The zygote's own loop (and why there is a zygote at all) is
//! `warden_inside::zygote`; what the two say to each other is
//! `warden_inside::wire`.

use super::error::SpawnError;
use super::posix_spawn;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use warden_confine::CompiledFilter;
use warden_inside::wire::{recv_with_fds, request, send_with_fds, READY, ZYGOTE_ARGV0};

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
        let (ours, theirs) = UnixStream::pair().map_err(SpawnError::sys("socketpair"))?;
        let (filter_r, filter_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SpawnError::Sys {
                what: "pipe",
                source: e.into(),
            })?;
        // A neutral argv[0] (see ZYGOTE_ARGV0).
        let argv = [ZYGOTE_ARGV0, "--zygote", "3", "--filter-fd", "4"];
        let pid = posix_spawn::spawn(init, &argv, &[theirs.as_fd(), filter_r.as_fd()])
            .map_err(SpawnError::sys("start the zygote"))?;
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
        let msg = request(owner);
        let mut channel = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        channel.confirm_ready()?;
        let sock = &channel.stream;
        send_with_fds(sock, &msg, &fds)
            .map_err(SpawnError::sys("hand the sandbox to the zygote"))?;
        let mut buf = [0u8; 4];
        let (n, mut fds) =
            recv_with_fds(sock, &mut buf).map_err(SpawnError::sys("hear back from the zygote"))?;
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
            .map_err(SpawnError::sys("hand the zygote its seccomp filter"))?;
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

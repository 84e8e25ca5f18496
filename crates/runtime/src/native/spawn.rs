//! Starting an init in fresh namespaces: clone, id maps, cgroup, go.
//!
//! The order follows bubblewrap, nsjail and youki: clone with every namespace
//! flag (done by the zygote, see `zygote.rs`); the child blocks on a pipe;
//! the host writes the uid/gid maps and puts the child in its cgroup; then it
//! sends "go" plus the setup, and the child becomes root of its user
//! namespace and builds the sandbox. The child must wait for the maps: until
//! they exist it has no uid it could become.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// The fds the init finds its channels on.
pub const CONTROL_FD: RawFd = 3;
pub const SETUP_FD: RawFd = 4;

/// Largest setup message (the pipe is enlarged to hold it whole, so the host
/// never blocks writing it).
const MAX_SETUP: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("sandbox setup description too large ({0} bytes)")]
    SetupTooLarge(usize),
    #[error("invalid init path {0:?}")]
    InitPath(String),
    #[error("{path}: {source}")]
    HostPath {
        path: String,
        source: std::io::Error,
    },
    #[error("a sandbox takes at most {0} host paths (image, input, mounts)")]
    TooManyPaths(usize),
}

fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> SpawnError {
    move |source| SpawnError::Sys { what, source }
}

fn last(what: &'static str) -> SpawnError {
    SpawnError::Sys {
        what,
        source: std::io::Error::last_os_error(),
    }
}

pub const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// The init as seen from the host.
pub struct InitProcess {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

impl InitProcess {
    /// SIGKILLs the init, which takes its whole PID namespace with it.
    /// Through the pidfd, so a recycled pid can never be hit.
    pub fn kill(&self) {
        // SAFETY: a plain system call on a pidfd we own.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }

    /// Kills the init and waits for it: the kernel reports its exit only
    /// once every other member of its PID namespace is gone.
    pub fn kill_and_reap(self) {
        self.kill();
        wait_exit(&self.pidfd);
    }
}

pub struct Started {
    pub init: InitProcess,
    pub control: UnixStream,
}

/// An init cloned into its namespaces, with its id maps written and in its
/// cgroup, blocked until it is sent its set-up ([`Pending::go`]). Dropping
/// it kills the init.
pub struct Pending {
    init: Option<InitProcess>,
    control: Option<UnixStream>,
    setup: Option<OwnedFd>,
}

/// Writes uid_map and gid_map: sandbox ids 0..65536 onto the slot's range.
pub fn write_id_maps(pid: i32, host_base: u32, count: u32) -> Result<(), SpawnError> {
    let map = format!("0 {host_base} {count}\n");
    std::fs::write(format!("/proc/{pid}/uid_map"), &map).map_err(sys("write uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &map).map_err(sys("write gid_map"))?;
    Ok(())
}

/// Starts an init as PID 1 of new namespaces (through the zygote), maps
/// sandbox ids 0..65536 onto `host_base..`, and puts it in `cgroup`. With
/// `netns` (a fresh namespace from the pool, consumed here) the init starts
/// in it instead of a new one made by the clone.
pub fn launch(
    zygote: &super::zygote::Zygote,
    netns: Option<OwnedFd>,
    host_base: u32,
    cgroup: &warden_cgroups::Cgroup,
) -> Result<Pending, SpawnError> {
    let (host_sock, child_sock) = UnixStream::pair().map_err(sys("socketpair"))?;
    let (setup_r, setup_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| SpawnError::Sys {
            what: "pipe",
            source: e.into(),
        })?;
    let (pid, pidfd) = zygote.launch(
        &OwnedFd::from(child_sock),
        &setup_r,
        netns.as_ref(),
        host_base,
    )?;
    drop(setup_r);
    // One sandbox per namespace: ours goes now, the init holds its own.
    drop(netns);
    let pending = Pending {
        init: Some(InitProcess { pid, pidfd }),
        control: Some(host_sock),
        setup: Some(setup_w),
    };
    write_id_maps(pid, host_base, super::slots::IDS_PER_SLOT)?;
    cgroup.add_pid(pid).map_err(|e| SpawnError::Sys {
        what: "join cgroup",
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(pending)
}

impl Pending {
    pub fn pid(&self) -> i32 {
        self.init.as_ref().map_or(0, |i| i.pid)
    }

    /// Sends the descriptors of the host paths the set-up names (see
    /// `handles.rs`), then "go" and `setup`: the init becomes root of its
    /// namespace and builds the sandbox.
    pub fn go(mut self, setup: &[u8], paths: &[OwnedFd]) -> Result<Started, SpawnError> {
        if setup.len() + 1 > MAX_SETUP {
            return Err(SpawnError::SetupTooLarge(setup.len()));
        }
        if let Some(control) = &self.control {
            super::handles::send(control, paths).map_err(sys("hand the sandbox its host paths"))?;
        }
        let w = self.setup.take().ok_or(SpawnError::Sys {
            what: "send setup",
            source: std::io::Error::other("already sent"),
        })?;
        if setup.len() + 1 > 65536 {
            // Enlarged so it holds the message whole: writing never blocks.
            rustix::pipe::fcntl_setpipe_size(&w, MAX_SETUP).map_err(|e| SpawnError::Sys {
                what: "enlarge setup pipe",
                source: e.into(),
            })?;
        }
        let mut msg = Vec::with_capacity(setup.len() + 1);
        msg.push(b'G');
        msg.extend_from_slice(setup);
        std::fs::File::from(w)
            .write_all(&msg)
            .map_err(sys("send setup"))?;
        match (self.init.take(), self.control.take()) {
            (Some(init), Some(control)) => Ok(Started { init, control }),
            _ => Err(SpawnError::Sys {
                what: "send setup",
                source: std::io::Error::other("no init"),
            }),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Without "go" the init sees EOF and exits; make sure of it.
        self.setup.take();
        if let Some(init) = self.init.take() {
            init.kill_and_reap();
        }
    }
}

/// `clone` into fresh namespaces; without `new_net` the child keeps the
/// caller's network namespace (the zygote has just entered a fresh one).
/// Returns the child's pid and pidfd in the parent, `None` in the child.
///
/// The classic `clone`, not `clone3`: its flags are a register the seccomp
/// policy can read, so the rules for it join the small part each sandbox
/// attaches (see `warden_confine::SETUP_SYSCALLS`), while `clone3` stays
/// refused with everything the zygote inherits. The sandbox then attaches
/// one filter instead of two.
pub fn clone_into_namespaces(new_net: bool) -> Result<Option<(i32, OwnedFd)>, SpawnError> {
    let mut pidfd: RawFd = -1;
    let mut flags = NAMESPACE_FLAGS | libc::CLONE_PIDFD as u64 | libc::SIGCHLD as u64;
    if !new_net {
        flags &= !(libc::CLONE_NEWNET as u64);
    }
    // SAFETY: no CLONE_VM and no new stack, so this behaves like fork();
    // the caller (the single-threaded zygote) continues in both processes.
    // With CLONE_PIDFD the kernel stores the pidfd through the parent_tid
    // argument (x86_64 and aarch64 order: flags, stack, parent_tid,
    // child_tid, tls).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            &mut pidfd as *mut RawFd,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        return Err(last("clone with new namespaces"));
    }
    if ret == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel gave us this pidfd and nobody else owns it.
    Ok(Some((ret as i32, unsafe { OwnedFd::from_raw_fd(pidfd) })))
}

/// Waits until the process behind `pidfd` has exited (retrying on EINTR).
/// For a PID namespace's init that is after every member is gone.
pub fn wait_exit(pidfd: &OwnedFd) {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return;
    }
}

/// The new child, in the namespaces `clone_into_namespaces` made: moves its
/// channels onto fds 3 and 4, points stdio at /dev/null, starts its own
/// session, closes everything else, waits for the host's "go" (sent once
/// the id maps and cgroup are in place), and becomes root of its user
/// namespace with no supplementary groups. Returns an exit code on failure.
///
/// # Safety
/// Must run in a freshly cloned, single-threaded child.
pub unsafe fn enter_child(sock: RawFd, setup: RawFd) -> Result<(), i32> {
    // Move the two channels above the range we are about to fill, then onto
    // their fixed numbers (dup2 clears close-on-exec on the copies).
    let s = libc::fcntl(sock, libc::F_DUPFD_CLOEXEC, 10);
    let p = libc::fcntl(setup, libc::F_DUPFD_CLOEXEC, 10);
    if s < 0 || p < 0 || libc::dup2(s, CONTROL_FD) < 0 || libc::dup2(p, SETUP_FD) < 0 {
        return Err(120);
    }
    // The init's own stdio goes nowhere: it reports through the channel.
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
    if null < 0 || libc::dup2(null, 0) < 0 || libc::dup2(null, 1) < 0 || libc::dup2(null, 2) < 0 {
        return Err(121);
    }
    // A session of its own: the init must not share the caller's session,
    // whose controlling terminal /dev/tty would otherwise reach.
    if libc::setsid() < 0 {
        return Err(124);
    }
    // Nothing else the launcher had open may reach the sandbox.
    libc::syscall(libc::SYS_close_range, SETUP_FD as u32 + 1, u32::MAX, 0u32);
    // Wait for the id maps and cgroup; EOF means the host gave up.
    let mut go = 0u8;
    loop {
        let r = libc::read(SETUP_FD, &mut go as *mut u8 as *mut libc::c_void, 1);
        if r == 1 && go == b'G' {
            break;
        }
        if r < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        return Err(122);
    }
    // We still hold the zygote's host ids (real and saved uid 0, effective
    // uid the slot's base, which owns our namespace), of which the new
    // namespace maps only the last. Become its root (host uid = the slot's
    // base) in all three and drop the host's supplementary groups, keeping
    // a full set of capabilities *in the sandbox's namespace* for the
    // set-up.
    if libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) < 0
        || libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32) < 0
        || libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) < 0
    {
        return Err(123);
    }
    Ok(())
}

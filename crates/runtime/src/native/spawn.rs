//! Starting an init in fresh namespaces, the host's side: ask the zygote
//! for the clone, write the id maps, put the init in its cgroup, send "go"
//! and the set-up. The child's side of each step is `warden_inside::clone`
//! (the order, after bubblewrap, nsjail and youki, is explained there).

use super::error::SpawnError;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use warden_inside::wire::GO;

/// Largest setup message (the pipe is enlarged to hold it whole, so the host
/// never blocks writing it).
const MAX_SETUP: usize = 1 << 20;

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
    std::fs::write(format!("/proc/{pid}/uid_map"), &map)
        .map_err(SpawnError::sys("write uid_map"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &map)
        .map_err(SpawnError::sys("write gid_map"))?;
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
    let (host_sock, child_sock) = UnixStream::pair().map_err(SpawnError::sys("socketpair"))?;
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
            super::handles::send(control, paths)
                .map_err(SpawnError::sys("hand the sandbox its host paths"))?;
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
        msg.push(GO);
        msg.extend_from_slice(setup);
        std::fs::File::from(w)
            .write_all(&msg)
            .map_err(SpawnError::sys("send setup"))?;
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

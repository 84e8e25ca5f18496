//! The native sandbox's set-up, run by the init as PID 1 of its new
//! namespaces (right after [`crate::clone::enter_child`]), before it serves
//! the protocol.
//!
//! Order (bubblewrap, nsjail and youki agree): private mount propagation,
//! tmpfs root, binds, /proc while the old root is still visible, pivot_root,
//! detach the old root, hostname and loopback, rlimits, drop groups and ids,
//! capabilities, no_new_privs, Landlock, and seccomp last.

mod boot_id;
mod handles;
mod rootfs;

pub use rootfs::MountError;

use crate::setup::{NativeSetup, DEVICES};
use rustix::mount::{mount_change, mount_remount, unmount, MountFlags, MountPropagationFlags};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::Path;
use warden_protocol::InitConfig;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("reading the setup description: {0}")]
    Read(#[source] std::io::Error),
    #[error("bad setup description: {0}")]
    Parse(#[from] serde_json::Error),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("confinement: {0}")]
    Confine(#[from] warden_confine::ConfineError),
    #[error(transparent)]
    Net(std::io::Error),
}

fn sys(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> SetupError {
    move |e| SetupError::Sys {
        what,
        source: e.into(),
    }
}

fn check(what: &'static str, r: libc::c_int) -> Result<(), SetupError> {
    if r < 0 {
        Err(SetupError::Sys {
            what,
            source: std::io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

/// Reads the setup from `fd` (and the host paths it names from `control`,
/// see `handles.rs`), builds the sandbox, and returns what the protocol
/// server needs. On return the process is fully confined.
pub fn setup(fd: RawFd, control: RawFd) -> Result<InitConfig, SetupError> {
    // SAFETY: the launcher handed us this fd; we own and close it.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut buf = Vec::new();
    pipe.read_to_end(&mut buf).map_err(SetupError::Read)?;
    drop(pipe);
    let (json, filter) = crate::wire::decode_message(&buf)
        .ok_or_else(|| SetupError::Read(std::io::Error::other("truncated setup message")))?;
    let setup: NativeSetup = serde_json::from_slice(json)?;
    let filter = warden_confine::CompiledFilter::from_bytes(filter)?;
    handles::receive(control, setup.path_fds).map_err(|source| SetupError::Sys {
        what: "receiving the host paths",
        source,
    })?;
    // The setup message holds only the rules for set-up's own calls; the
    // rest of the policy came with the clone from the zygote. Refuse to run
    // without it (2 = filter mode).
    // SAFETY: a query with no pointers.
    if unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } != 2 {
        return Err(SetupError::Sys {
            what: "the seccomp filter inherited from the zygote",
            source: std::io::Error::other("missing"),
        });
    }

    // The host moved us into our cgroup after the clone made the cgroup
    // namespace, whose root is therefore the host's; a fresh one is rooted
    // at our own cgroup, so /proc/self/cgroup shows no host paths.
    // SAFETY: single-threaded, and nothing here depends on the old view.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
        .map_err(sys("unshare cgroup namespace"))?;

    // SAFETY: plain system calls on no memory of ours.
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(sys("make mounts private"))?;

    // The root tmpfs, reached through its own descriptor: its mount point
    // is a host path we may not be able to search (see `handles.rs`).
    let root_fd = rootfs::root_tmpfs(
        Path::new(&setup.staging_dir),
        setup.writable_root.then_some(setup.disk_bytes),
    )?;
    let root_path = format!("/proc/self/fd/{}", root_fd.as_raw_fd());
    let root = Path::new(&root_path);
    let layers = match setup.writable_root {
        true => Some(rootfs::Layers::new(root)?),
        false => None,
    };
    rootfs::image(
        root,
        &setup.image,
        setup.usr_dir.as_deref(),
        layers.as_ref(),
    )?;
    rootfs::etc(root, &setup, layers.as_ref())?;
    if let Some(l) = &layers {
        l.detach_lowers()?;
    }
    rootfs::dev(root, Path::new(&setup.dev_template), setup.disk_bytes)?;
    rootfs::proc(root)?;
    rootfs::layout(root, &setup)?;

    rustix::system::sethostname(setup.hostname.as_bytes()).map_err(sys("sethostname"))?;
    crate::net::loopback_up().map_err(SetupError::Net)?;

    // pivot_root(".", ".") stacks the old root under the new one; detaching
    // it leaves only the sandbox's tree (no put_old directory needed).
    rustix::process::chdir(root).map_err(sys("chdir to new root"))?;
    rustix::process::pivot_root(".", ".").map_err(sys("pivot_root"))?;
    unmount(".", rustix::mount::UnmountFlags::DETACH).map_err(sys("detach old root"))?;
    rustix::process::chdir("/").map_err(sys("chdir /"))?;
    // No handle on the host's tree may outlive the set-up.
    handles::close_all();
    drop(root_fd);
    if !setup.writable_root {
        mount_remount(
            "/",
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
            c"",
        )
        .map_err(sys("remount / read-only"))?;
    }

    confine(&setup, &filter)?;
    Ok(setup.init)
}

fn confine(setup: &NativeSetup, filter: &warden_confine::CompiledFilter) -> Result<(), SetupError> {
    use warden_confine as c;
    c::apply_rlimits(&c::Rlimits {
        nofile: setup.nofile,
        nproc: None,
        fsize_bytes: Some(setup.disk_bytes),
        core: 0,
        memlock: 64 << 10,
        stack: None,
    })?;
    // The bounding set needs CAP_SETPCAP to clear, so before the id change.
    c::drop_bounding_and_ambient()?;
    let id = setup.uid;
    check("setresgid", unsafe { libc::setresgid(id, id, id) })?;
    check("setresuid", unsafe { libc::setresuid(id, id, id) })?;
    c::clear_capability_sets()?;
    // Not dumpable: /proc/1 belongs to root, so the sandbox's processes
    // cannot ptrace the init, read its memory or steal its channel.
    check("PR_SET_DUMPABLE", unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0)
    })?;
    c::set_no_new_privs()?;
    let mut rw: Vec<std::path::PathBuf> = ["/output", "/scratch", "/tmp", "/dev/shm", "/dev/pts"]
        .iter()
        .map(Into::into)
        .collect();
    for (d, _, _) in DEVICES {
        rw.push(Path::new("/dev").join(d));
    }
    for m in setup.mounts.iter().filter(|m| !m.read_only) {
        rw.push(m.target.clone().into());
    }
    rw.extend(setup.own_home.iter().map(Into::into));
    if setup.writable_root {
        // A writable root is writable anywhere its mounts and permissions
        // allow (a Landlock rule covers everything beneath its path, and
        // new top-level directories need one on `/`): what stays
        // unwritable is so by its mount (/input, /proc/sys, /dev, /sys
        // read-only) and by the kernel's own checks (docs/security.md).
        rw = vec!["/".into()];
    }
    c::apply_landlock(&c::LandlockPaths {
        read_exec: vec!["/".into()],
        read_write: rw,
    })?;
    c::apply_seccomp(filter)?;
    Ok(())
}

//! The security attack suite: hostile code inside real sandboxes tries
//! to break out, and every attempt must fail *for the right reason*. Each
//! probe checks the errno or message it gets, and, where it makes sense, a
//! control runs the same probe where it should work (on the host as root, or
//! inside the sandbox on an allowed target), so no test can pass because a
//! tool was missing or a probe was malformed.
//!
//! Probes are written with what the host's `/usr` holds: `sh`, coreutils and
//! `python3` (raw system calls through `ctypes`). System call numbers are
//! x86_64's; the seccomp group only builds there.
//!
//! | Attack | Stopped by |
//! |---|---|
//! | read host `/etc/shadow`, `/root` | mount namespace + synthesised `/etc` (no shadow), private empty `/root` (0700) |
//! | read another sandbox's `/scratch`, see its processes, reach its sockets | mount, PID, network (incl. abstract Unix sockets) namespaces; per-sandbox tmpfs |
//! | see host processes | PID namespace (fresh `/proc`) |
//! | `kill -9 -1`, SIGKILL/SIGSTOP PID 1 | PID namespace (kill(-1) stays inside; the namespace init ignores them) |
//! | host process under the sandbox's own host uid | PID namespace (uid alone would allow the signal) |
//! | ptrace PID 1, read `/proc/1/{mem,environ,maps,exe,fd}` | init non-dumpable (+ no CAP_SYS_PTRACE); seccomp for ptrace |
//! | overwrite `/proc/1/exe`, `/proc/self/exe`, the init binary | init binary not in the sandbox's tree; non-dumpable init; read-only `/usr` + Landlock |
//! | create files in `/`, `/usr`, `/etc`, `/dev`, `/sys` | read-only root tmpfs and binds (EROFS), Landlock |
//! | write/unlink/chmod in `/input` (even 0777/0666 on the host), symlink in input to `/etc/shadow` | read-only bind (EROFS); links resolve in the sandbox's own tree |
//! | host sockets under `/run`, `/var/run` | mount namespace (`/run` empty, no `/var`) |
//! | write `/proc/sys/kernel/{hostname,core_pattern}`, `/proc/sysrq-trigger` | read-only bind over `/proc/sys` (and sysrq-trigger), Landlock, no capabilities |
//! | cgroup v1 `release_agent`, mount cgroupfs | no `/sys/fs/cgroup` in the sandbox; seccomp (mount) |
//! | open `/dev/kvm`, `/dev/vda`, `/dev/mem`; `mknod` | minimal `/dev` (nodes absent); no CAP_MKNOD |
//! | setuid binaries (`su`, `passwd`, `mount`), `setuid(0)` | `nosuid` mounts + `no_new_privs`; no capabilities |
//! | inherited file descriptors | `close_range` in the launcher, CLOEXEC in the init |
//! | keyctl, bpf, perf_event_open, io_uring, userfaultfd, open_by_handle_at, fanotify | seccomp (EPERM) |
//! | unshare / setns / clone(CLONE_NEW*) / mount / pivot_root / new mount API | seccomp (EPERM), clone3 → ENOSYS |
//! | ptrace, process_vm_readv/writev, kcmp, pidfd_getfd on a sibling | seccomp (EPERM) |
//! | TIOCSTI / TIOCLINUX, incl. `0x1_0000_5412` | seccomp (low 32 bits compared) + `setsid` (no controlling tty) |
//! | AF_PACKET, AF_VSOCK, netlink audit/uevent/diag/generic | seccomp (EPERM) |
//! | x32 system calls, personality(ADDR_NO_RANDOMIZE) | seccomp (x32 guard kills; personality allow-list) |
//! | host `127.0.0.1:<port>`, host abstract socket, 169.254.169.254, fd00:ec2::254 | network namespace (own loopback only, no routes) |
//! | fork bomb | pids cgroup (EAGAIN), cpu cgroup; destroy kills the PID namespace |
//! | memory bomb | memory cgroup (OOM kill inside the sandbox) |
//! | CPU burn | cpu cgroup (CFS quota) |
//! | fill `/scratch`, `/tmp`, `/output`, `/dev/shm` | tmpfs `size=` (ENOSPC) |
//! | one file bigger than the disk limit | RLIMIT_FSIZE (EFBIG / SIGXFSZ) |
//! | inode exhaustion | tmpfs `nr_inodes=` (ENOSPC) |
//! | fd exhaustion | RLIMIT_NOFILE (EMFILE) |
//! | double-forked `setsid` daemon outliving the sandbox | PID namespace: killing PID 1 kills every member |
//! | crippling the init (prlimit on PID 1) | self-harm only; the host still destroys through the pidfd + cgroup |
//! | `/output` symlinks, hard links, FIFO, socket, 10 GB sparse file, `..`/newline/invalid-UTF-8 names, deep nesting | export: strict `openat2` reads (no symlinks, nlink 1, regular files only), name checks, byte budget, depth limit, `cap_std` on the host |
//! | symlink swapped in during export (TOCTOU) | export: `openat2(RESOLVE_NO_SYMLINKS)` at read time |
//! | writable root: change host `/usr`, `/etc`, the shared templates, the next sandbox; write `/input`; fill the layer | overlays over idmapped read-only copies, upper layers on the sandbox's own root tmpfs (disk limit, ENOSPC); gVisor: overlay in the Sentry's memory; `/input` read-only bind (EROFS) |
//! | volume: plant a setuid-root program or a device node for the next sandbox; replace root's script as another user; write or remount a read-only volume; reach its loop device | `nosuid`/`nodev` mounts (host and sandbox), no CAP_MKNOD; sticky volume root; read-only mount flags + seccomp (mount); no loop nodes in `/dev`; the host's mount point in a root-only directory |
//!
//! Every attack runs on both tiers (`both_tiers!`: `<name>::native`,
//! `<name>::gvisor`). The table is the native tier's; under gVisor the
//! Sentry serves every system call, and each test's gVisor branch accepts
//! exactly what the Sentry answers, with the reason in the assertion
//! (summarised in `docs/security.md`, "The gVisor tier").
//!
//! Fixed finding: the cgroup namespace used to be created before the init
//! joined its cgroups, so `/proc/self/cgroup` showed host paths; the init now
//! unshares a fresh cgroup namespace once inside its cgroup.
//!
//! Accepted, documented behaviour (asserted as such below):
//! - code inside runs under the init's uid, so it can lower the init's
//!   rlimits and cripple its own sandbox; the host still destroys it.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod helpers;

mod export;
mod filesystem;
mod kernel_files;
mod namespaces;
mod resources;
mod seccomp;
mod shared_kernel;
mod teardown;
mod volumes;
mod writable_root;

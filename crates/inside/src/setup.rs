//! What the host tells a native sandbox's init to build (sent once over the
//! setup pipe as JSON, see [`crate::wire::encode_message`]), and the fixed
//! parts of every sandbox that the host's templates and the init's set-up
//! must agree on.

use serde::{Deserialize, Serialize};
use warden_protocol::InitConfig;
use warden_spec::{Image, Mount};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeSetup {
    pub image: Image,
    pub input_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub hostname: String,
    /// Size of each writable tmpfs.
    pub disk_bytes: u64,
    pub nofile: u64,
    /// uid/gid inside the sandbox that processes run as.
    pub uid: u32,
    /// A home of the user's own to make (a tmpfs of `disk_bytes` owned by
    /// `uid`), e.g. `/home/user`.
    #[serde(default)]
    pub own_home: Option<String>,
    /// The root is writable: the root tmpfs is `disk_bytes` large and stays
    /// writable, and the image's directories and /etc are overlays whose
    /// upper layers live on it (see `init/rootfs.rs`).
    #[serde(default)]
    pub writable_root: bool,
    /// The host image's `/usr` for a writable root: a descriptor's path to
    /// an idmapped copy of it (see the runtime's `native/handles.rs`).
    #[serde(default)]
    pub usr_dir: Option<String>,
    /// An empty host directory the new root is built on (in the sandbox's
    /// own mount namespace: nothing is mounted on the host).
    pub staging_dir: String,
    /// Host templates for /etc (host image) and /dev (see the runtime's
    /// `templates.rs`).
    pub etc_template: String,
    pub dev_template: String,
    pub init: InitConfig,
    /// How many host paths above arrive as descriptors on the control
    /// socket (and are named `/proc/self/fd/N`): see `init/handles.rs`.
    #[serde(default)]
    pub path_fds: usize,
}

/// Where a native sandbox keeps the files its /etc template links to
/// (`hosts`, `hostname`), on its root tmpfs.
pub const OWN_FILES: &str = ".warden";

/// Character devices every sandbox gets: (name, major, minor). The host
/// makes them in the /dev template (mknod is impossible in a user
/// namespace); the init lets the sandbox write to them past Landlock.
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Ptys one sandbox may hold at once (its devpts instance's `max=`). All
/// devpts instances but the host's own share `kernel.pty.max` minus
/// `kernel.pty.reserve` (3,072 by default): without a cap one sandbox could
/// take them all and every other sandbox would get ENOSPC from /dev/ptmx.
pub const MAX_PTYS: u32 = 64;

/// inotify instances and watches each user of a sandbox may hold, set in
/// the sandbox's own user namespace (`/proc/sys/user/max_inotify_*`, which
/// it cannot change: its /proc/sys is read-only and it has no
/// capabilities). Above that, the kernel charges the sandbox's namespace
/// to its owner, the slot's uid, against the host's per-user limits
/// (`fs.inotify.max_user_instances`, `max_user_watches`): see `zygote.rs`.
pub const MAX_INOTIFY_INSTANCES: u32 = 128;
pub const MAX_INOTIFY_WATCHES: u32 = 65_536;

/// Inodes a writable tmpfs of `bytes` may hold: enough for real work, few
/// enough that creating empty files cannot eat kernel memory without bound.
/// (The gVisor tier sizes its tmpfs mounts the same way.)
pub fn inodes_for(bytes: u64) -> u64 {
    (bytes / 4096).clamp(1024, 1 << 20)
}

/// The contents of `/etc/hosts` and `/etc/hostname` for hostname `h`, the
/// same on both tiers.
pub fn name_files(h: &str) -> [(&'static str, String); 2] {
    [
        (
            "hosts",
            format!("127.0.0.1\tlocalhost {h}\n::1\tlocalhost ip6-localhost ip6-loopback {h}\n"),
        ),
        ("hostname", format!("{h}\n")),
    ]
}

//! Host-side templates for the parts of every sandbox's tree that do not
//! change between sandboxes: the host image's `/etc` and `/dev`.
//!
//! Built once per runtime start under the state directory, owned by host
//! root, and bound read-only into each sandbox as one mount each, instead of
//! a dozen binds per sandbox: mounts are the bulk of a sandbox's set-up time.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Harmless, read-only pieces of the host's /etc that programs expect.
/// Never the host's accounts, secrets, or configuration of its services.
pub const HOST_ETC: &[&str] = &[
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    // Debian's matplotlib reads its defaults through /etc.
    "matplotlibrc",
    "mime.types",
    "os-release",
    "protocols",
    "services",
    "ssl",
    "timezone",
];

/// Files every sandbox gets in /etc, whatever its image.
pub const OWN_ETC: &[(&str, &str)] = &[
    (
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\n\
         sandbox:x:1000:1000:sandbox:/scratch:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    ),
    ("group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n"),
    (
        "nsswitch.conf",
        "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
         protocols: files\nservices: files\n",
    ),
    (
        "resolv.conf",
        "# Warden: this sandbox has no network beyond loopback.\n",
    ),
];

/// Per-sandbox files (see [`PerSandbox`]).
pub const PER_SANDBOX_ETC: &[&str] = &["hosts", "hostname"];

/// Where the /etc template leaves a sandbox's own `hosts` and `hostname`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerSandbox {
    /// Empty placeholder files, for a backend to bind (or write) over.
    Placeholders,
    /// Symlinks to `/.warden/<name>` ([`OWN_FILES`]), which each native
    /// sandbox writes on its root tmpfs: two small files instead of two
    /// binds (four mount calls) per sandbox.
    Links,
}

/// Where a native sandbox keeps the files its /etc links to.
pub const OWN_FILES: &str = ".warden";

/// Names in /etc that Warden always provides itself.
pub fn is_own_etc(name: &str) -> bool {
    OWN_ETC.iter().any(|(n, _)| *n == name)
        || PER_SANDBOX_ETC.contains(&name)
        || matches!(name, "shadow" | "gshadow" | "mtab")
}

/// Character devices every sandbox gets: (name, major, minor).
pub const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

#[derive(Debug, Clone)]
pub struct Templates {
    pub etc: PathBuf,
    pub dev: PathBuf,
}

/// Copies `src` to `dst`: symlinks as symlinks, directories recursively,
/// regular files by content; anything else is skipped.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let md = fs::symlink_metadata(src)?;
    let ft = md.file_type();
    // Only what any local user could read anyway: a directory or file the
    // host keeps from "others" (e.g. /etc/ssl/private) is not copied at all.
    let mode = md.permissions().mode();
    if (ft.is_dir() && mode & 0o005 != 0o005) || (ft.is_file() && mode & 0o004 == 0) {
        return Ok(());
    }
    if ft.is_symlink() {
        symlink(fs::read_link(src)?, dst)
    } else if ft.is_dir() {
        fs::create_dir(dst)?;
        fs::set_permissions(
            dst,
            fs::Permissions::from_mode(md.permissions().mode() & 0o755),
        )?;
        for ent in fs::read_dir(src)? {
            let ent = ent?;
            copy_tree(&ent.path(), &dst.join(ent.file_name()))?;
        }
        Ok(())
    } else if ft.is_file() {
        fs::copy(src, dst)?;
        // World-readable files only; anything else was not meant for us.
        let mode = md.permissions().mode() & 0o755;
        fs::set_permissions(dst, fs::Permissions::from_mode(mode))
    } else {
        Ok(())
    }
}

fn build_etc(dir: &Path, per_sandbox: PerSandbox) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for name in HOST_ETC {
        let src = Path::new("/etc").join(name);
        if fs::symlink_metadata(&src).is_ok() {
            copy_tree(&src, &dir.join(name))?;
        }
    }
    for name in PER_SANDBOX_ETC {
        match per_sandbox {
            PerSandbox::Placeholders => fs::write(dir.join(name), "")?,
            PerSandbox::Links => symlink(format!("../{OWN_FILES}/{name}"), dir.join(name))?,
        }
    }
    write_own_etc(dir)
}

/// Writes the /etc files every sandbox gets (accounts, name service,
/// resolver) and the `mtab` link into `dir`.
pub fn write_own_etc(dir: &Path) -> io::Result<()> {
    for (name, content) in OWN_ETC {
        fs::write(dir.join(name), content)?;
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o644))?;
    }
    symlink("../proc/self/mounts", dir.join("mtab"))
}

fn build_dev(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (name, major, minor) in DEVICES {
        let p = dir.join(name);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(*major, *minor),
        )?;
        // mknod honours the umask; the mode must be exact.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666))?;
    }
    for sub in ["pts", "shm"] {
        fs::create_dir(dir.join(sub))?;
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dir.join(name))?;
    }
    Ok(())
}

/// Builds fresh templates under `state_dir`, replacing older ones. A
/// template in use by a live sandbox stays valid: the sandbox holds a bind
/// of the old directory, which is only unlinked from the host's view.
pub fn prepare(state_dir: &Path, per_sandbox: PerSandbox) -> io::Result<Templates> {
    let dir = state_dir.join("templates");
    fs::create_dir_all(&dir)?;
    remove_orphans(&dir);
    // Unique per build, so concurrent runtimes never see a half-built one.
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let etc = dir.join(format!("etc-{stamp}"));
    let dev = dir.join(format!("dev-{stamp}"));
    build_etc(&etc, per_sandbox)?;
    build_dev(&dev)?;
    Ok(Templates { etc, dev })
}

/// Removes templates whose building process is gone (it crashed, or was a
/// runtime that never shut down cleanly). Names are `etc-<pid>-<ns>`.
fn remove_orphans(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = fs::remove_dir_all(ent.path());
            }
        }
    }
}

/// Removes this runtime's templates (on a clean shutdown).
pub fn remove(t: &Templates) {
    let _ = fs::remove_dir_all(&t.etc);
    let _ = fs::remove_dir_all(&t.dev);
}

//! The OCI bundle of one gVisor sandbox: `config.json`, the sandbox's own
//! /etc files, and its root directory unless it uses the runtime's shared
//! one (see `skeleton`).
//!
//! The root is a directory of mount points and the merged-/usr symlinks,
//! owned by host root and read-only to the sandbox; everything with content
//! arrives as a mount that gVisor's gofer serves (the image, /etc, /input,
//! the init binary) or as a tmpfs in the Sentry's memory (/tmp, /scratch,
//! /output, /dev/shm). Nothing is mounted on the host: the gofer makes its
//! binds in its own mount namespace.

use super::{io, skeleton, GvisorError};
use crate::native::setup::base_env;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use warden_inside::setup::inodes_for;
use warden_protocol::InitConfig;
use warden_spec::{Image, SandboxSpec, SandboxUser, USER_HOME};

/// Where the init binary appears inside the sandbox.
pub const INIT_TARGET: &str = "/.warden/warden-init";

/// The directory of [`INIT_TARGET`].
pub const INIT_DIR: &str = "/.warden";

/// The init's argv: a bare name (found through `PATH` = its directory) so
/// that /proc/1/cmdline says `warden-init`, not where the binary lives.
/// Its configuration (the environment, secrets included) is not in the
/// argv: it arrives over the control channel (see
/// [`super::send_init_config`]), so nothing in the bundle, runsc's state or
/// the Sentry's arguments holds it.
pub const INIT_ARGV: [&str; 4] = ["warden-init", "--control-fd", "0", "--config-on-control"];

/// Host threads the Sentry and gofer need besides one per application
/// thread; the host pids limit is the spec's plus this.
pub const GVISOR_HOST_THREADS: u64 = 128;

/// What the bundle is made from, besides the spec.
pub struct Inputs<'a> {
    pub init_path: &'a Path,
    /// The host image's /etc template (see `native::templates`).
    pub etc_template: &'a Path,
    /// `/<cgroup parent>/<id>`.
    pub cgroups_path: String,
    /// The runtime's shared skeleton (see `skeleton`), for the sandboxes
    /// that fit it.
    pub shared: Option<&'a skeleton::Shared>,
    /// The host's locales as one archive (see `locale`), shown at
    /// `/usr/lib/locale` in sandboxes of the host image.
    pub locale: Option<&'a Path>,
}

fn bind(src: &Path, dst: &str, ro: bool) -> Value {
    let mut opts = vec!["rbind", "nosuid", "nodev"];
    opts.push(if ro { "ro" } else { "rw" });
    json!({"destination": dst, "type": "bind", "source": src, "options": opts})
}

fn tmpfs(dst: &str, opts: String) -> Value {
    let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into()];
    o.extend(opts.split(',').map(String::from));
    json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o})
}

/// The image's part of the mounts: each directory or file entry bound
/// over its mount point (symlinks are in the skeleton); read-only, or for
/// a writable root "read-write" under runsc's overlay, which keeps every
/// write in the sandbox's memory (see [`overlay`]).
fn image(src_dir: &Path, entries: &[skeleton::Entry], ro: bool, mounts: &mut Vec<Value>) {
    for e in entries {
        if !matches!(e.kind, skeleton::Kind::Link(_)) {
            let target = format!("/{}", e.name.to_string_lossy());
            mounts.push(bind(&src_dir.join(&e.name), &target, ro));
        }
    }
}

/// runsc's flag for a sandbox with a writable root: the root and every
/// read-write bind (the image's, /etc) get an overlay whose upper layer is
/// in the Sentry's memory, so nothing is written to the host; read-only
/// binds (/input, the init) stay read-only. Spec validation refuses a
/// gVisor writable root with read-write mounts of the caller's (volumes),
/// whose writes would otherwise land there too and be lost.
pub fn overlay(spec: &SandboxSpec) -> Option<&'static str> {
    spec.writable_root.then_some("--overlay2=all:memory")
}

/// /etc: the host image gets the prepared template; a directory image gets
/// Warden's own account and name files plus every other entry of its /etc
/// (bound read-only). Either way `hosts` and `hostname` are this sandbox's.
/// With the shared skeleton, /etc is the template inside it, and its name
/// files already say the default hostname: only another name is bound.
fn etc(
    bundle: &Path,
    spec: &SandboxSpec,
    template: &Path,
    shared: Option<&skeleton::Shared>,
    mounts: &mut Vec<Value>,
) -> Result<(), GvisorError> {
    if shared.is_some_and(|s| s.hostname == spec.hostname) {
        return Ok(());
    }
    let ro = !spec.writable_root;
    let mut own = Vec::new();
    // Straight in the bundle: every directory costs an rmdir at teardown.
    for (name, text) in warden_inside::setup::name_files(&spec.hostname) {
        let path = bundle.join(name);
        fs::write(&path, text).map_err(io("write", &path))?;
        own.push(bind(&path, &format!("/etc/{name}"), true));
    }
    match &spec.image {
        _ if shared.is_some() => {}
        Image::Host => mounts.push(bind(template, "/etc", ro)),
        Image::Dir(d) => {
            let etc = bundle.join("etc");
            fs::create_dir(&etc).map_err(io("mkdir", &etc))?;
            fs::set_permissions(&etc, fs::Permissions::from_mode(0o755))
                .map_err(io("chmod", &etc))?;
            crate::native::templates::write_own_etc(&etc).map_err(io("write", &etc))?;
            let mut inner = Vec::new();
            let src = Path::new(d).join("etc");
            if let Ok(rd) = fs::read_dir(&src) {
                for ent in rd.flatten() {
                    let name = ent.file_name();
                    let Some(n) = name.to_str() else { continue };
                    if crate::native::templates::is_own_etc(n) {
                        continue;
                    }
                    let Ok(md) = fs::symlink_metadata(ent.path()) else {
                        continue;
                    };
                    if md.file_type().is_symlink() {
                        if let Ok(t) = fs::read_link(ent.path()) {
                            let _ = symlink(t, etc.join(n));
                        }
                    } else if md.is_dir() || md.is_file() {
                        skeleton::mount_point(&etc, Path::new(n), md.is_file())?;
                        inner.push(bind(&ent.path(), &format!("/etc/{n}"), ro));
                    }
                }
            }
            for name in ["hosts", "hostname"] {
                skeleton::mount_point(&etc, Path::new(name), true)?;
            }
            mounts.push(bind(&etc, "/etc", ro));
            mounts.extend(inner);
        }
    }
    mounts.extend(own);
    Ok(())
}

/// Writes the bundle for `spec` into the empty directory `bundle`.
pub fn write(bundle: &Path, spec: &SandboxSpec, inp: &Inputs) -> Result<(), GvisorError> {
    let (src_dir, entries) = skeleton::image_entries(&spec.image)?;
    let shared = inp.shared.filter(|_| skeleton::fits_shared(spec));
    let root = match shared {
        Some(s) => s.root.clone(),
        None => {
            let own = bundle.join("rootfs");
            skeleton::build(&own, spec, &entries)?;
            own
        }
    };
    let uid = spec.user.uid();
    let size = spec.limits.disk_bytes;
    let inodes = inodes_for(size);

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        // gVisor fills a /dev tmpfs with its own null, zero, random, tty...
        tmpfs("/dev", "mode=755".into()),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        tmpfs("/dev/shm", format!("noexec,mode=1777,size={size}")),
    ];
    image(&src_dir, &entries, !spec.writable_root, &mut mounts);
    if let (Image::Host, Some(dir)) = (&spec.image, inp.locale) {
        mounts.push(bind(dir, super::locale::LOCALE_DIR, true));
    }
    etc(bundle, spec, inp.etc_template, shared, &mut mounts)?;
    for (dir, mode) in [("output", "0755"), ("scratch", "0755"), ("tmp", "1777")] {
        mounts.push(tmpfs(
            &format!("/{dir}"),
            format!("mode={mode},size={size},nr_inodes={inodes},uid={uid},gid={uid}"),
        ));
    }
    if spec.user == SandboxUser::User {
        mounts.push(tmpfs(
            USER_HOME,
            format!("mode=0750,size={size},nr_inodes={inodes},uid={uid},gid={uid}"),
        ));
    }
    if let Some(input) = &spec.input_dir {
        mounts.push(bind(Path::new(input), "/input", true));
    }
    for m in &spec.mounts {
        mounts.push(bind(Path::new(&m.source), &m.target, m.read_only));
    }
    if !shared.is_some_and(|s| s.has_init) {
        mounts.push(bind(inp.init_path, INIT_TARGET, true));
    }

    let config = config_json(spec, mounts, &inp.cgroups_path, &root);
    let path = bundle.join("config.json");
    let text = serde_json::to_vec_pretty(&config).map_err(GvisorError::Json)?;
    private_file(&path, &text)
}

/// What the init is told over its control channel: the commands'
/// environment and working directory.
pub fn init_config(spec: &SandboxSpec) -> InitConfig {
    InitConfig {
        env: base_env(spec),
        workdir: spec.workdir.clone(),
    }
}

/// Writes `path` readable by its owner (root) alone: the bundle is runsc's
/// business, no other host user's.
pub(super) fn private_file(path: &Path, bytes: &[u8]) -> Result<(), GvisorError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(io("write", path))
}

fn config_json(spec: &SandboxSpec, mounts: Vec<Value>, cgroups_path: &str, root: &Path) -> Value {
    let uid = spec.user.uid();
    let l = &spec.limits;
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    // With an allowlist runsc runs in the namespace made for the egress
    // proxy (egress.rs) and must stay there; a "network" entry would have
    // it make a new, empty one.
    if spec.network.rules().is_none() {
        namespaces.insert(1, json!({"type": "network"}));
    }
    let rlimit = |t: &str, v: u64| json!({"type": t, "hard": v, "soft": v});
    let mut resources = json!({});
    if let Some(m) = l.memory_bytes {
        let mut mem = json!({"limit": m});
        if let Some(s) = l.swap_bytes {
            mem["swap"] = json!(m.saturating_add(s));
        }
        resources["memory"] = mem;
    }
    if let Some(p) = l.pids {
        resources["pids"] = json!({"limit": p + GVISOR_HOST_THREADS});
    }
    if let Some(mc) = l.cpu_millicores {
        resources["cpu"] = json!({"quota": mc * 100, "period": 100_000});
    }
    // No capabilities in any set, whichever user: as on the native tier,
    // root in the sandbox is root of nothing.
    let caps =
        json!({"bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []});
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": uid},
            "args": INIT_ARGV,
            // The init's own environment: only where to find itself. The
            // commands' environment comes over the control channel.
            "env": [format!("PATH={}", INIT_DIR)],
            "cwd": "/",
            "capabilities": caps,
            "noNewPrivileges": true,
            "rlimits": [
                rlimit("RLIMIT_NOFILE", l.nofile),
                rlimit("RLIMIT_FSIZE", l.disk_bytes),
                rlimit("RLIMIT_CORE", 0),
                rlimit("RLIMIT_MEMLOCK", 64 << 10),
            ],
        },
        "root": {"path": root, "readonly": !spec.writable_root},
        "hostname": spec.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "resources": resources,
            "cgroupsPath": cgroups_path,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_spec::Mount;

    fn destinations(bundle: &Path) -> (Value, Vec<String>) {
        let text = fs::read_to_string(bundle.join("config.json")).unwrap();
        let cfg: Value = serde_json::from_str(&text).unwrap();
        let dsts = cfg["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            .collect();
        (cfg["root"]["path"].clone(), dsts)
    }

    /// What the shared skeleton holds is not mounted again; a sandbox that
    /// does not fit it gets its own root and every mount.
    #[test]
    fn shared_skeleton_replaces_mounts_only_where_it_fits() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("etc-template");
        fs::create_dir(&template).unwrap();
        let init = dir.path().join("init");
        fs::write(&init, "").unwrap();
        let shared = skeleton::build_shared(&dir.path().join("root"), &template, &init).unwrap();
        assert!(shared.has_init, "same filesystem: the init is linked in");
        let etc = shared.root.join("etc");
        let inp = Inputs {
            init_path: &init,
            etc_template: &etc,
            cgroups_path: "/warden/x".into(),
            shared: Some(&shared),
            locale: None,
        };
        let write = |name: &str, spec: &SandboxSpec| {
            let b = dir.path().join(name);
            fs::create_dir(&b).unwrap();
            write(&b, spec, &inp).unwrap();
            b
        };

        let b = write("default", &SandboxSpec::default());
        let (root, dsts) = destinations(&b);
        assert_eq!(root, json!(shared.root));
        for gone in ["/etc", "/etc/hosts", "/etc/hostname", INIT_TARGET] {
            assert!(!dsts.iter().any(|d| d == gone), "{gone} in {dsts:?}");
        }
        assert!(dsts.iter().any(|d| d == "/usr"));
        assert_eq!(
            fs::read_to_string(etc.join("hostname")).unwrap(),
            "sandbox\n"
        );

        let named = SandboxSpec {
            hostname: "other".into(),
            ..SandboxSpec::default()
        };
        let b = write("named", &named);
        let (root, dsts) = destinations(&b);
        assert_eq!(root, json!(shared.root));
        assert!(!dsts.iter().any(|d| d == "/etc"));
        assert!(dsts.iter().any(|d| d == "/etc/hostname"));
        assert_eq!(fs::read_to_string(b.join("hostname")).unwrap(), "other\n");

        let mounted = SandboxSpec {
            mounts: vec![Mount {
                source: init.to_string_lossy().into_owned(),
                target: "/opt/tool".into(),
                read_only: true,
                sandbox_ids: false,
            }],
            ..SandboxSpec::default()
        };
        let b = write("mounted", &mounted);
        let (root, dsts) = destinations(&b);
        assert_eq!(root, json!(b.join("rootfs")));
        assert!(b.join("rootfs/opt/tool").is_file());
        for needed in [
            "/etc",
            "/etc/hosts",
            "/etc/hostname",
            INIT_TARGET,
            "/opt/tool",
        ] {
            assert!(dsts.iter().any(|d| d == needed), "{needed} not in {dsts:?}");
        }
    }
}

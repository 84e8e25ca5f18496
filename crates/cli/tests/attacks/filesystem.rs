//! Attacks stopped by: Filesystem.

use super::helpers::*;

// ===========================================================================
// Layer: filesystem (mount namespace, read-only binds, Landlock, non-dumpable init)
// ===========================================================================

/// The host's secrets are simply not in the sandbox's tree.
async fn host_secrets_are_absent(tier: Tier) {
    // Control: the host has them.
    assert!(Path::new("/etc/shadow").is_file());
    assert!(
        std::fs::read_dir("/root").unwrap().count() > 0,
        "host /root is empty"
    );
    let host_users: BTreeSet<String> = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            out('shadow', tryf(lambda: open('/etc/shadow').read()))
            out('gshadow', tryf(lambda: open('/etc/gshadow').read()))
            out('sudoers', tryf(lambda: open('/etc/sudoers').read()))
            out('ssh', tryf(lambda: os.listdir('/etc/ssh')))
            try:
                out('root', len(os.listdir('/root')))
            except OSError as e:
                out('root', ename(e.errno))
            out('users', ','.join(sorted(l.split(':')[0] for l in open('/etc/passwd'))))
            out('proc1root', tryf(lambda: os.listdir('/proc/1/root/')))
            out('run', len(os.listdir('/run')))
            out('var', tryf(lambda: os.listdir('/var')))
            "#,
        )
        .await;
        for f in ["shadow", "gshadow", "sudoers", "ssh"] {
            assert_eq!(get(&r, f), "ENOENT", "{user:?}: {r:?}");
        }
        let want_root = if user == SandboxUser::Root {
            "0"
        } else {
            "EACCES"
        };
        assert_eq!(get(&r, "root"), want_root, "{user:?}: {r:?}");
        assert_eq!(
            get(&r, "users"),
            "nobody,root,sandbox,user",
            "{user:?}: {r:?}"
        );
        assert_eq!(get(&r, "proc1root"), "EACCES", "{user:?}: {r:?}");
        // No host sockets (an API socket under /run or /var/run) to talk to.
        assert_eq!(get(&r, "run"), "0", "{user:?}: {r:?}");
        assert_eq!(get(&r, "var"), "ENOENT", "{user:?}: {r:?}");
        assert!(
            host_users.len() > 3,
            "control: host /etc/passwd has more accounts"
        );
        assert!(
            std::fs::read_dir("/run").unwrap().count() > 0,
            "control: host /run"
        );
    }
}

/// PID 1 (the init, which holds the control channel) cannot be traced,
/// read or have its descriptors stolen, whichever user the sandbox runs as.
#[cfg(target_arch = "x86_64")]
async fn init_process_is_opaque(tier: Tier) {
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            for k in ['mem', 'environ', 'maps', 'auxv', 'exe', 'fd/0', 'fd/3', 'cwd/', 'root/etc/passwd']:
                out('open_' + k, tryf(lambda: open('/proc/1/' + k, 'rb').read(1)))
            out('readlink_exe', tryf(lambda: os.readlink('/proc/1/exe')))
            out('readlink_fd3', tryf(lambda: os.readlink('/proc/1/fd/3')))
            out('readlink_root', tryf(lambda: os.readlink('/proc/1/root')))
            out('list_fd', tryf(lambda: os.listdir('/proc/1/fd')))
            out('write_mem', tryf(lambda: os.open('/proc/1/mem', os.O_RDWR)))
            out('ptrace_attach', sc(101, 16, 1, 0, 0))
            out('ptrace_seize', sc(101, 0x4206, 1, 0, 0))
            out('vm_readv', vm(310, 1, 0x400000))
            pidfd = libc.syscall(ctypes.c_long(434), ctypes.c_long(1), ctypes.c_long(0))
            out('pidfd_open', 'OK' if pidfd >= 0 else 'ERR')
            out('pidfd_getfd', sc(438, pidfd, 3, 0))
            # Control: our own /proc entries are readable.
            out('own_environ', tryf(lambda: open('/proc/self/environ', 'rb').read(1)))
            out('own_mem', tryf(lambda: open('/proc/self/mem', 'rb')))
            "#,
        )
        .await;
        if tier == Tier::Gvisor {
            init_is_opaque_under_gvisor(&r, user);
            continue;
        }
        for k in [
            "open_mem",
            "open_environ",
            "open_maps",
            "open_auxv",
            "open_exe",
            "open_fd/0",
            "open_fd/3",
            "open_cwd/",
            "open_root/etc/passwd",
            "readlink_exe",
            "readlink_fd3",
            "readlink_root",
            "write_mem",
        ] {
            assert_eq!(get(&r, k), "EACCES", "{user:?} {k}: {r:?}");
        }
        // Nobody in the sandbox can even list the init's descriptors: the
        // init was cloned (not exec'd) from the zygote, so its non-dumpable
        // /proc entries belong to host root, not to the sandbox's root.
        assert_eq!(get(&r, "list_fd"), "EACCES", "{user:?}: {r:?}");
        for k in ["ptrace_attach", "ptrace_seize", "vm_readv", "pidfd_getfd"] {
            assert_eq!(get(&r, k), "EPERM", "{user:?} {k}: {r:?}");
        }
        assert_eq!(get(&r, "pidfd_open"), "OK", "{r:?}");
        assert_eq!(get(&r, "own_environ"), "OK", "{r:?}");
        assert_eq!(get(&r, "own_mem"), "OK", "{r:?}");
    }
}

/// Under gVisor the init runs under the commands' own uid inside the
/// Sentry, whose procfs gates `environ`, `maps`, `auxv` and the descriptor
/// table by file mode alone: those are readable (the environment is the
/// spec's, which every command receives anyway). Everything that would let
/// code act on the init is refused: its memory, executable, root, working
/// directory and descriptors cannot be opened, it cannot be traced, and
/// gVisor has no process_vm_*, pidfd_open or pidfd_getfd at all.
fn init_is_opaque_under_gvisor(r: &HashMap<String, String>, user: SandboxUser) {
    for k in [
        "open_mem",
        "open_exe",
        "open_cwd/",
        "open_root/etc/passwd",
        "readlink_exe",
        "readlink_root",
        "write_mem",
    ] {
        assert_eq!(get(r, k), "EACCES", "gVisor {user:?} {k}: {r:?}");
    }
    // fd 0 is the control socket, fd 3 an internal descriptor: the Sentry
    // cannot reopen either through /proc.
    assert_eq!(
        get(r, "open_fd/0"),
        "ENXIO",
        "gVisor: a socket cannot be reopened: {r:?}"
    );
    assert_eq!(
        get(r, "open_fd/3"),
        "ENODEV",
        "gVisor: not reopenable: {r:?}"
    );
    for k in ["ptrace_attach", "ptrace_seize"] {
        assert_eq!(get(r, k), "EPERM", "gVisor {user:?} {k}: {r:?}");
    }
    assert_eq!(
        get(r, "vm_readv"),
        "ENOSYS",
        "gVisor has no process_vm_readv: {r:?}"
    );
    assert_eq!(
        get(r, "pidfd_open"),
        "ERR",
        "gVisor (2022) has no pidfd_open: {r:?}"
    );
    assert_eq!(
        get(r, "pidfd_getfd"),
        "ENOSYS",
        "gVisor has no pidfd_getfd: {r:?}"
    );
    for k in [
        "open_environ",
        "open_maps",
        "open_auxv",
        "list_fd",
        "readlink_fd3",
    ] {
        assert_eq!(
            get(r, k),
            "OK",
            "gVisor: mode-gated procfs (see above): {r:?}"
        );
    }
}

/// CVE-2019-5736 style: overwrite the binary behind `/proc/1/exe` (the
/// init, a host file) or `/proc/<pid>/exe` of a running command (a host
/// `/usr` file). Every open for writing fails and the host files are
/// byte-for-byte unchanged.
async fn exe_overwrite_is_refused(tier: Tier) {
    let init = init_bin().canonicalize().unwrap();
    let dash = Path::new("/usr/bin/dash");
    let before = (sha256(&init), sha256(dash));
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe_args(
            &sb,
            r#"
            for p in ['/proc/1/exe', '/proc/self/exe', '/usr/bin/dash']:
                out(p, tryf(lambda: os.open(p, os.O_WRONLY)))
            out('opath_exe', tryf(lambda: os.open('/proc/1/exe', os.O_PATH)))
            q = subprocess.Popen(['/bin/sh', '-c', 'sleep 5'])
            time.sleep(0.1)
            out('sibling_exe', tryf(lambda: os.open(f'/proc/{q.pid}/exe', os.O_WRONLY | os.O_TRUNC)))
            q.kill()
            out('init_path', tryf(lambda: os.stat(sys.argv[1])))
            out('gvisor_init', tryf(lambda: os.open('/.warden/warden-init', os.O_WRONLY)))
            "#,
            &[init.to_str().unwrap()],
        )
        .await;
        assert_eq!(get(&r, "/proc/1/exe"), "EACCES", "{user:?}: {r:?}");
        assert_eq!(get(&r, "opath_exe"), "EACCES", "{user:?}: {r:?}");
        // The commands' own binaries come from the read-only host /usr.
        for k in ["/proc/self/exe", "/usr/bin/dash", "sibling_exe"] {
            assert!(
                ["EACCES", "EROFS", "ETXTBSY"].contains(&get(&r, k)),
                "{user:?} {k}: {r:?}"
            );
        }
        assert_eq!(
            get(&r, "init_path"),
            "ENOENT",
            "the init binary is visible: {r:?}"
        );
        // gVisor binds the init read-only at /.warden/warden-init.
        expect(
            tier,
            &r,
            "gvisor_init",
            &["ENOENT"],
            &["EACCES", "EROFS"],
            "read-only bind of the init",
        );
    }
    assert_eq!(before, (sha256(&init), sha256(dash)), "host binary changed");
}

/// Nothing outside the writable tmpfs mounts can be created or changed.
async fn system_directories_are_read_only(tier: Tier) {
    let tok = token();
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe_args(
            &sb,
            r#"
            t = sys.argv[1]
            for d in ['/', '/usr/', '/usr/bin/', '/bin/', '/etc/', '/dev/', '/sys/', '/input/', '/run/', '/home/', '/root/']:
                out('new' + d, tryf(lambda: os.close(os.open(d + 'pwned-' + t, os.O_CREAT | os.O_WRONLY, 0o644))))
            out('mkdir_sys', tryf(lambda: os.mkdir('/sys/fs')))
            out('passwd', tryf(lambda: os.open('/etc/passwd', os.O_WRONLY)))
            out('rename_etc', tryf(lambda: os.rename('/etc/hosts', '/etc/hosts2')))
            out('chmod_root', tryf(lambda: os.chmod('/', 0o777)))
            for d in ['/scratch/', '/tmp/', '/output/', '/dev/shm/']:
                out('ok' + d, tryf(lambda: os.close(os.open(d + 'ok', os.O_CREAT | os.O_WRONLY, 0o644))))
            "#,
            &[&tok],
        )
        .await;
        for d in [
            "/",
            "/usr/",
            "/usr/bin/",
            "/bin/",
            "/etc/",
            "/dev/",
            "/sys/",
            "/input/",
            "/run/",
            "/home/",
        ] {
            let k = format!("new{d}");
            match (tier, user, d) {
                (Tier::Native, _, _) => assert_eq!(get(&r, &k), "EROFS", "{user:?} {d}: {r:?}"),
                // The Sentry's own /dev is an in-memory tmpfs of the
                // sandbox's root (nothing of the host's /dev, checked below).
                (Tier::Gvisor, SandboxUser::Root, "/dev/") => {
                    assert_eq!(get(&r, &k), "OK", "gVisor root /dev: {r:?}")
                }
                (Tier::Gvisor, SandboxUser::Root, "/sys/") => {
                    assert_eq!(get(&r, &k), "EPERM", "gVisor's own sysfs: {r:?}")
                }
                (Tier::Gvisor, SandboxUser::Root, _) => {
                    assert_eq!(get(&r, &k), "EROFS", "gVisor {d}: {r:?}")
                }
                // gVisor checks the directory's permission bits before the
                // mount's read-only flag.
                (Tier::Gvisor, SandboxUser::Sandbox | SandboxUser::User, _) => {
                    assert_eq!(get(&r, &k), "EACCES", "gVisor {d}: {r:?}")
                }
            }
        }
        // /root is 0700: the sandbox user is stopped at the lookup already.
        let want = if user == SandboxUser::Root {
            "EROFS"
        } else {
            "EACCES"
        };
        assert_eq!(get(&r, "new/root/"), want, "{user:?}: {r:?}");
        expect(
            tier,
            &r,
            "mkdir_sys",
            &["EROFS"],
            &["EACCES", "EPERM"],
            "the Sentry's own read-only sysfs",
        );
        assert!(
            ["EROFS", "EACCES"].contains(&get(&r, "passwd")),
            "{user:?}: {r:?}"
        );
        assert_eq!(get(&r, "rename_etc"), "EROFS", "{user:?}: {r:?}");
        assert!(
            ["EROFS", "EPERM"].contains(&get(&r, "chmod_root")),
            "{user:?}: {r:?}"
        );
        for d in ["/scratch/", "/tmp/", "/output/", "/dev/shm/"] {
            assert_eq!(
                get(&r, &format!("ok{d}")),
                "OK",
                "control {user:?} {d}: {r:?}"
            );
        }
    }
    // The host's /usr did not grow a file.
    assert!(!Path::new(&format!("/usr/pwned-{tok}")).exists());
    assert!(!Path::new(&format!("/usr/bin/pwned-{tok}")).exists());
    assert!(!Path::new(&format!("/dev/pwned-{tok}")).exists());
}

/// `/input` is a read-only bind even where the host's permissions would let
/// anyone write (mode 0777 directory, 0666 file), and a symlink planted in
/// the input resolves inside the sandbox, not on the host.
async fn input_is_read_only(tier: Tier) {
    use std::os::unix::fs::PermissionsExt;
    let input = tempfile::tempdir().unwrap();
    std::fs::set_permissions(input.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = input.path().join("data.txt");
    std::fs::write(&file, "original").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", input.path().join("shadow-link")).unwrap();
    for user in USERS {
        let sb = Sb::on(
            tier,
            spec(|s| {
                s.user = user;
                s.input_dir = Some(input.path().to_string_lossy().into_owned());
            }),
        )
        .await;
        let r = probe(
            &sb,
            r#"
            out('read', open('/input/data.txt').read())
            out('write', tryf(lambda: os.open('/input/data.txt', os.O_WRONLY)))
            out('create', tryf(lambda: os.open('/input/new', os.O_CREAT | os.O_WRONLY, 0o644)))
            out('unlink', tryf(lambda: os.unlink('/input/data.txt')))
            out('rename', tryf(lambda: os.rename('/input/data.txt', '/input/moved')))
            out('chmod', tryf(lambda: os.chmod('/input/data.txt', 0o600)))
            out('utime', tryf(lambda: os.utime('/input/data.txt', (0, 0))))
            out('link_out', tryf(lambda: os.link('/input/data.txt', '/scratch/hard')))
            out('shadow_link', tryf(lambda: open('/input/shadow-link').read()))
            "#,
        )
        .await;
        assert_eq!(get(&r, "read"), "original", "control: {r:?}");
        for k in ["write", "create", "unlink", "rename"] {
            assert_eq!(get(&r, k), "EROFS", "{user:?} {k}: {r:?}");
        }
        for k in ["chmod", "utime"] {
            let gvisor: &[&str] = match user {
                SandboxUser::Root => &["EROFS"],
                SandboxUser::Sandbox | SandboxUser::User => &["EPERM"],
            };
            expect(
                tier,
                &r,
                k,
                &["EROFS"],
                gvisor,
                "gVisor checks ownership (the host file is root's) before the read-only mount",
            );
        }
        assert_eq!(get(&r, "link_out"), "EXDEV", "{user:?}: {r:?}");
        // The sandbox's /etc has no shadow: the link cannot reach the host's.
        assert_eq!(get(&r, "shadow_link"), "ENOENT", "{user:?}: {r:?}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original");
    let names: BTreeSet<String> = std::fs::read_dir(input.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["data.txt", "shadow-link"].map(String::from).into());
}

both_tiers!(
    host_secrets_are_absent,
    exe_overwrite_is_refused,
    system_directories_are_read_only,
    input_is_read_only,
);

#[cfg(target_arch = "x86_64")]
both_tiers!(init_process_is_opaque,);

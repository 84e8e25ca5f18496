//! Attacks stopped by: seccomp.
//!
//! Under gVisor no filter runs inside the sandbox: every system call is the
//! Sentry's, which either does not implement it (ENOSYS, EAFNOSUPPORT...),
//! refuses it itself, or implements it in user space (its own namespaces,
//! ptrace, io_uring, kernel log), so the host kernel never sees it. The
//! gVisor expectations below say which, key by key.

use super::helpers::*;

/// What the Sentry answers to the kernel attack surface probe.
const GVISOR_SURFACE: [(&str, &str, &str); 10] = [
    ("keyctl", "EACCES", "no keyrings in the Sentry"),
    ("request_key", "EACCES", "no keyrings in the Sentry"),
    ("bpf", "EPERM", "the Sentry's bpf needs CAP_SYS_ADMIN"),
    ("perf_event_open", "ENODEV", "no perf events in the Sentry"),
    (
        "io_uring_setup",
        "EFAULT",
        "the Sentry's own io_uring (user space) read a NULL params",
    ),
    ("userfaultfd", "ENOSYS", "not implemented by the Sentry"),
    (
        "open_by_handle_at",
        "ENOTSUP",
        "not implemented by the Sentry",
    ),
    (
        "name_to_handle_at",
        "ENOTSUP",
        "not implemented by the Sentry",
    ),
    ("fanotify_init", "ENOSYS", "not implemented by the Sentry"),
    (
        "syslog",
        "OK",
        "the Sentry's own made-up kernel log (see gvisor.rs)",
    ),
];

// ===========================================================================
// Layer: seccomp (crates/confine/policy/x86_64.json)
// ===========================================================================

/// Kernel attack surface: every call is refused with EPERM inside, while on
/// the host the same calls with the same arguments get past the syscall
/// entry (they succeed or fail with another errno) — so EPERM is the filter.
#[cfg(target_arch = "x86_64")]
async fn seccomp_refuses_kernel_attack_surface(tier: Tier) {
    let body = r#"
        out('keyctl', sc(250, 0, -3, 0))              # KEYCTL_GET_KEYRING_ID session
        out('request_key', sc(249, b'user', b'warden-none', 0, 0))
        out('bpf', sc(321, 9999, 0, 0))               # bad command
        out('perf_event_open', sc(298, 0, 0, -1, -1, 0))
        out('io_uring_setup', sc(425, 1, 0))
        out('userfaultfd', sc(323, 1))                # UFFD_USER_MODE_ONLY
        out('open_by_handle_at', sc(304, -1, 0, 0))
        out('name_to_handle_at', sc(303, -100, b'/', 0, 0, 0))
        out('fanotify_init', sc(300, 0, 0))
        out('syslog', sc(103, 3, 0, 0))               # SYSLOG_ACTION_READ_ALL
    "#;
    let host = host_probe(body);
    let sb = Sb::default_on(tier).await;
    let inside = probe(&sb, body).await;
    if tier == Tier::Gvisor {
        for (k, want, why) in GVISOR_SURFACE {
            assert_eq!(get(&inside, k), want, "gVisor {k} ({why}): {inside:?}");
            assert_ne!(get(&host, k), "EPERM", "control {k} on host: {host:?}");
        }
        let sb = Sb::on(tier, as_user(SandboxUser::Root)).await;
        let inside = probe(&sb, body).await;
        for (k, want, why) in GVISOR_SURFACE {
            assert_eq!(get(&inside, k), want, "gVisor root {k} ({why}): {inside:?}");
        }
        return;
    }
    for k in [
        "keyctl",
        "request_key",
        "bpf",
        "perf_event_open",
        "io_uring_setup",
        "userfaultfd",
        "open_by_handle_at",
        "name_to_handle_at",
        "fanotify_init",
        "syslog",
    ] {
        assert_eq!(get(&inside, k), "EPERM", "{k}: {inside:?}");
        assert_ne!(get(&host, k), "EPERM", "control {k} on host: {host:?}");
    }
    // Root of the sandbox fares no better.
    let sb = Sb::on(tier, as_user(SandboxUser::Root)).await;
    let inside = probe(&sb, body).await;
    for k in [
        "keyctl",
        "bpf",
        "perf_event_open",
        "io_uring_setup",
        "userfaultfd",
    ] {
        assert_eq!(get(&inside, k), "EPERM", "root {k}: {inside:?}");
    }
}

/// No new namespaces, no mounts, no root changes; clone3 reports ENOSYS so
/// libc falls back to clone, whose flags the filter can see.
#[cfg(target_arch = "x86_64")]
async fn seccomp_refuses_namespaces_and_mounts(tier: Tier) {
    // Control: the host can create user and network namespaces.
    let st = Command::new("unshare")
        .args(["-U", "-n", "true"])
        .status()
        .unwrap();
    assert!(st.success(), "control: unshare -U -n on the host");
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            for name, flag in [('user', 0x10000000), ('net', 0x40000000), ('mnt', 0x20000),
                               ('pid', 0x20000000), ('ipc', 0x8000000), ('uts', 0x4000000),
                               ('cgroup', 0x2000000), ('time', 0x80)]:
                out('unshare_' + name, sc(272, flag))
            # clone(CLONE_NEWUSER|CLONE_NEWNS|SIGCHLD): refused before any child exists
            out('clone_newuser', sc(56, 0x10000000 | 0x20000 | 17, 0, 0, 0, 0))
            out('setns', sc(308, os.open('/proc/self/ns/net', os.O_RDONLY), 0))
            out('mount_tmpfs', sc(165, b'none', b'/tmp', b'tmpfs', 0, 0))
            out('bind_usr', sc(165, b'/usr', b'/tmp', 0, 0x1000, 0))
            out('remount_root', sc(165, 0, b'/', 0, 0x20 | 0x1000, 0))  # MS_REMOUNT|MS_BIND rw
            out('umount_usr', sc(166, b'/usr', 2))
            out('pivot_root', sc(155, b'/tmp', b'/tmp'))
            out('chroot', sc(161, b'/tmp'))
            out('fsopen', sc(430, b'tmpfs', 0))
            out('open_tree', sc(428, -100, b'/usr', 1))
            out('mount_setattr', sc(442, -100, b'/', 0, 0, 0))
            out('clone3', sc(435, 0, 0))
            # Control: an ordinary fork still works (clone without namespace bits).
            p = os.fork()
            if p == 0:
                os._exit(7)
            out('fork', os.waitpid(p, 0)[1] >> 8)
            "#,
        )
        .await;
        if tier == Tier::Gvisor {
            namespaces_and_mounts_under_gvisor(&sb, &r, user).await;
            continue;
        }
        for k in [
            "unshare_user",
            "unshare_net",
            "unshare_mnt",
            "unshare_pid",
            "unshare_ipc",
            "unshare_uts",
            "unshare_cgroup",
            "unshare_time",
            "clone_newuser",
            "setns",
            "mount_tmpfs",
            "bind_usr",
            "remount_root",
            "umount_usr",
            "pivot_root",
            "chroot",
            "fsopen",
            "open_tree",
            "mount_setattr",
        ] {
            assert_eq!(get(&r, k), "EPERM", "{user:?} {k}: {r:?}");
        }
        assert_eq!(get(&r, "clone3"), "ENOSYS", "{r:?}");
        assert_eq!(get(&r, "fork"), "7", "control: {r:?}");
        let out = sb.sh("unshare -U -r true; unshare -n true").await;
        assert_ne!(out.status.code, Some(0));
        assert!(
            text(&out.stderr).contains("Operation not permitted"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// Under gVisor, namespaces are the Sentry's own: `unshare` succeeds and
/// makes nothing on the host (and the first, a user namespace, then lets
/// `chroot` succeed inside it). Mounts are still refused, and none of it
/// gets past the read-only image.
async fn namespaces_and_mounts_under_gvisor(
    sb: &Sb,
    r: &HashMap<String, String>,
    user: SandboxUser,
) {
    for (k, want, why) in [
        ("unshare_user", "OK", "the Sentry's own user namespace"),
        ("unshare_net", "OK", "the Sentry's own namespaces"),
        ("unshare_mnt", "OK", "the Sentry's own namespaces"),
        ("unshare_pid", "OK", "the Sentry's own namespaces"),
        ("unshare_ipc", "OK", "the Sentry's own namespaces"),
        ("unshare_uts", "OK", "the Sentry's own namespaces"),
        ("unshare_cgroup", "OK", "the Sentry's own namespaces"),
        ("unshare_time", "OK", "the Sentry's own namespaces"),
        (
            "clone_newuser",
            "EPERM",
            "the Sentry refuses nesting further",
        ),
        ("setns", "ENOTSUP", "not implemented by the Sentry"),
        ("mount_tmpfs", "EPERM", "the Sentry refuses"),
        ("bind_usr", "EPERM", "the Sentry refuses"),
        ("remount_root", "EPERM", "the Sentry refuses"),
        ("umount_usr", "EPERM", "the Sentry refuses"),
        ("pivot_root", "EINVAL", "the Sentry refuses"),
        (
            "chroot",
            "OK",
            "inside the Sentry's user namespace made above",
        ),
        ("fsopen", "ENOSYS", "not implemented by the Sentry"),
        ("open_tree", "ENOSYS", "not implemented by the Sentry"),
        ("mount_setattr", "ENOSYS", "not implemented by the Sentry"),
        ("clone3", "ENOSYS", "not implemented by the Sentry"),
    ] {
        assert_eq!(get(r, k), want, "gVisor {user:?} {k} ({why}): {r:?}");
    }
    assert_eq!(get(r, "fork"), "7", "control: {r:?}");
    // Root of a Sentry user namespace gains nothing over the image.
    let out = sb
        .sh("unshare -U -r sh -c 'touch /usr/pwned || mount -t tmpfs none /usr'")
        .await;
    assert_ne!(out.status.code, Some(0), "{out:?}");
    assert!(!Path::new("/usr/pwned").exists());
    let out = sb.sh("unshare -n true").await;
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{}",
        text(&out.stderr)
    );
}

/// ptrace, process_vm_readv/writev, kcmp and pidfd_getfd against a sibling
/// process of the same uid (which the kernel alone would allow: same uid,
/// dumpable, no Yama) are refused by the filter.
#[cfg(target_arch = "x86_64")]
async fn seccomp_refuses_cross_process_access(tier: Tier) {
    let body = r#"
        q = subprocess.Popen(['sleep', '10'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05)
        st = open(f'/proc/{q.pid}/status').read()
        out('same_uid', [l.split()[1] for l in st.splitlines() if l.startswith('Uid:')][0] == str(os.getuid()))
        out('ptrace_attach', sc(101, 16, q.pid, 0, 0))
        out('ptrace_seize', sc(101, 0x4206, q.pid, 0, 0))
        if len(sys.argv) > 1:  # never on the host: it would make the test harness a tracer
            out('ptrace_traceme', sc(101, 0, 0, 0, 0))
        out('vm_readv', vm(310, q.pid, 0x400000))
        out('vm_writev', vm(311, q.pid, 0x400000))
        out('vm_readv_self', vm(310, os.getpid(), SRC_ADDR))
        out('kcmp', sc(312, os.getpid(), q.pid, 0, 0, 0))
        pidfd = libc.syscall(ctypes.c_long(434), ctypes.c_long(q.pid), ctypes.c_long(0))
        out('pidfd_getfd', sc(438, pidfd, 0, 0))
        q.kill()
        q.wait()
    "#;
    let host = host_probe(body);
    assert_eq!(get(&host, "vm_readv_self"), "OK", "control: {host:?}");
    assert_eq!(get(&host, "kcmp"), "OK", "control: {host:?}");
    assert_eq!(get(&host, "pidfd_getfd"), "OK", "control: {host:?}");
    let sb = Sb::default_on(tier).await;
    // Under gVisor PTRACE_TRACEME would succeed (the Sentry's own ptrace)
    // and leave the probe stopped at its next signal, traced by the init.
    let args: &[&str] = match tier {
        Tier::Native => &["inside"],
        Tier::Gvisor => &[],
    };
    let r = probe_args(&sb, body, args).await;
    assert_eq!(get(&r, "same_uid"), "True", "{r:?}");
    if tier == Tier::Gvisor {
        tier.skip(
            "PTRACE_TRACEME",
            "the Sentry implements it; the init is no tracer",
        );
        for (k, want, why) in [
            (
                "ptrace_attach",
                "OK",
                "the Sentry's own ptrace, of a sibling in the same sandbox",
            ),
            ("ptrace_seize", "EPERM", "not implemented by the Sentry"),
            ("vm_readv", "ENOSYS", "not implemented by the Sentry"),
            ("vm_writev", "ENOSYS", "not implemented by the Sentry"),
            ("vm_readv_self", "ENOSYS", "not implemented by the Sentry"),
            ("kcmp", "EPERM", "the Sentry refuses"),
            ("pidfd_getfd", "ENOSYS", "not implemented by the Sentry"),
        ] {
            assert_eq!(get(&r, k), want, "gVisor {k} ({why}): {r:?}");
        }
        return;
    }
    for k in [
        "ptrace_attach",
        "ptrace_seize",
        "ptrace_traceme",
        "vm_readv",
        "vm_writev",
        "vm_readv_self",
        "kcmp",
        "pidfd_getfd",
    ] {
        assert_eq!(get(&r, k), "EPERM", "{k}: {r:?}");
    }
}

/// TIOCSTI (and TIOCLINUX) are refused by the filter, including the
/// CVE-2019-10063 variant with high bits set. On /dev/null the kernel itself
/// would answer ENOTTY (host control), so EPERM is the filter's; on a pty
/// the host's root really can push input with both request numbers.
#[cfg(target_arch = "x86_64")]
async fn seccomp_refuses_tiocsti(tier: Tier) {
    let body = r#"
        c = ctypes.c_char(b'x')
        m, s = os.openpty()
        n = os.open('/dev/null', os.O_RDWR)
        out('pty', sc(16, s, 0x5412, ctypes.byref(c)))
        out('pty_hi', sc(16, s, 0x100005412, ctypes.byref(c)))
        out('null', sc(16, n, 0x5412, ctypes.byref(c)))
        out('null_hi', sc(16, n, 0x100005412, ctypes.byref(c)))
        out('null_hi2', sc(16, n, 0xdead00005412, ctypes.byref(c)))
        out('tioclinux', sc(16, n, 0x541C, ctypes.byref(c)))
        ws = ctypes.create_string_buffer(8)
        out('winsz', sc(16, s, 0x5413, ws))
    "#;
    let host = host_probe(body);
    assert_eq!(get(&host, "null"), "ENOTTY", "control: {host:?}");
    assert_eq!(get(&host, "null_hi"), "ENOTTY", "control: {host:?}");
    assert_eq!(get(&host, "pty"), "OK", "control: {host:?}");
    assert_eq!(
        get(&host, "pty_hi"),
        "OK",
        "control: kernel truncates the request: {host:?}"
    );
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe(&sb, body).await;
        for k in ["pty", "pty_hi", "null", "null_hi", "null_hi2", "tioclinux"] {
            expect(
                tier,
                &r,
                k,
                &["EPERM"],
                &["ENOTTY"],
                "the Sentry's terminals implement neither TIOCSTI nor TIOCLINUX",
            );
        }
        assert_eq!(
            get(&r, "winsz"),
            "OK",
            "control: other tty ioctls work: {r:?}"
        );
    }
}

/// Packet, vsock and non-route netlink sockets are refused; the host can
/// create every one of them (control), and ordinary sockets still work.
#[cfg(target_arch = "x86_64")]
async fn seccomp_refuses_dangerous_sockets(tier: Tier) {
    let body = r#"
        for name, fam, typ, proto in [
            ('packet_raw', 17, 3, 0), ('packet_dgram', 17, 2, 0),
            ('vsock_stream', 40, 1, 0), ('vsock_dgram', 40, 2, 0),
            ('nl_audit', 16, 3, 9), ('nl_uevent', 16, 3, 15), ('nl_diag', 16, 3, 4),
            ('nl_generic', 16, 3, 16), ('nl_netfilter', 16, 3, 12),
            ('nl_route', 16, 3, 0), ('inet', 2, 1, 0), ('unix', 1, 1, 0)]:
            out(name, sc(41, fam, typ, proto))
        out('socketpair_vsock', sc(53, 40, 1, 0, ctypes.byref((ctypes.c_int * 2)())))
    "#;
    let host = host_probe(body);
    for k in ["packet_raw", "vsock_stream", "nl_audit", "nl_uevent"] {
        assert_eq!(get(&host, k), "OK", "control {k} on host: {host:?}");
    }
    for user in USERS {
        let sb = Sb::on(tier, as_user(user)).await;
        let r = probe(&sb, body).await;
        for (k, gvisor, why) in [
            ("packet_raw", "EPERM", "no CAP_NET_RAW in the Sentry"),
            ("packet_dgram", "EPERM", "no CAP_NET_RAW in the Sentry"),
            ("vsock_stream", "EAFNOSUPPORT", "no vsock in the Sentry"),
            ("vsock_dgram", "EAFNOSUPPORT", "no vsock in the Sentry"),
            (
                "nl_audit",
                "EPROTONOSUPPORT",
                "not implemented by the Sentry",
            ),
            (
                "nl_uevent",
                "OK",
                "the Sentry's own uevent socket, which never speaks",
            ),
            (
                "nl_diag",
                "EPROTONOSUPPORT",
                "not implemented by the Sentry",
            ),
            (
                "nl_generic",
                "EPROTONOSUPPORT",
                "not implemented by the Sentry",
            ),
            (
                "nl_netfilter",
                "EPROTONOSUPPORT",
                "not implemented by the Sentry",
            ),
            ("socketpair_vsock", "EAFNOSUPPORT", "no vsock in the Sentry"),
        ] {
            expect(tier, &r, k, &["EPERM"], &[gvisor], why);
        }
        for k in ["nl_route", "inet", "unix"] {
            assert_eq!(get(&r, k), "OK", "control {k}: {r:?}");
        }
    }
}

/// x32 system calls (which carry AUDIT_ARCH_X86_64 and would dodge every
/// rule) kill the process; personality flags that weaken ASLR are refused.
#[cfg(target_arch = "x86_64")]
async fn seccomp_kills_x32_and_limits_personality(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    if tier == Tier::Gvisor {
        // The Sentry dispatches system calls itself: an x32 number is
        // merely unknown, and it supports no personality at all.
        let r = probe(
            &sb,
            r#"
            out('x32_getpid', sc(0x40000000 | 39))
            out('addr_no_randomize', sc(135, 0x0040000))
            out('read_implies_exec', sc(135, 0x0400000))
            out('getpid', sc(39))
            "#,
        )
        .await;
        assert_eq!(get(&r, "x32_getpid"), "ENOSYS", "gVisor: no x32 ABI: {r:?}");
        for k in ["addr_no_randomize", "read_implies_exec"] {
            assert_eq!(get(&r, k), "EINVAL", "gVisor: no personality flags: {r:?}");
        }
        assert_eq!(get(&r, "getpid"), "OK", "control: {r:?}");
        return;
    }
    let r = probe(
        &sb,
        r#"
        out('addr_no_randomize', sc(135, 0x0040000))
        out('read_implies_exec', sc(135, 0x0400000))
        out('query', sc(135, 0xffffffff))
        out('linux', sc(135, 0))
        "#,
    )
    .await;
    assert_eq!(get(&r, "addr_no_randomize"), "EPERM", "{r:?}");
    assert_eq!(get(&r, "read_implies_exec"), "EPERM", "{r:?}");
    assert_eq!(get(&r, "query"), "OK", "control: {r:?}");
    assert_eq!(get(&r, "linux"), "OK", "control: {r:?}");
    // x32 getpid (0x40000000 | 39).
    let out = py_args(
        &sb,
        "print('before', flush=True)\nsc(0x40000000 | 39)\nprint('after')",
        &[],
    )
    .await;
    assert_eq!(out.status.signal, Some(libc::SIGSYS), "{out:?}");
    assert_eq!(text(&out.stdout), "before\n");
    // Control: the plain x86_64 getpid is fine.
    let out = py_args(&sb, "out('getpid', sc(39))", &[]).await;
    assert_eq!(
        kv(&out.stdout).get("getpid").map(String::as_str),
        Some("OK")
    );
}

#[cfg(target_arch = "x86_64")]
both_tiers!(
    seccomp_refuses_kernel_attack_surface,
    seccomp_refuses_namespaces_and_mounts,
    seccomp_refuses_cross_process_access,
    seccomp_refuses_tiocsti,
    seccomp_refuses_dangerous_sockets,
    seccomp_kills_x32_and_limits_personality,
);

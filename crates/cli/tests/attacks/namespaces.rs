//! Attacks stopped by: Namespaces.

use super::helpers::*;

// ===========================================================================
// Layer: namespaces (PID, mount, network, IPC, UTS, user)
// ===========================================================================

/// `ps` and `/proc` inside show only the sandbox's own processes.
async fn host_processes_are_invisible(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let me = std::process::id();
    // Control: the host's ps sees this test process among many.
    let host = text(
        &Command::new("ps")
            .args(["-eo", "pid="])
            .output()
            .unwrap()
            .stdout,
    );
    let host_pids: BTreeSet<u32> = host
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(host_pids.contains(&me), "host ps misses the test itself");

    let ps = sb.ok("ps -eo pid=,uid=,comm=").await;
    let procs: Vec<(u32, u32, String)> = ps
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_string(),
            )
        })
        .collect();
    assert!(
        procs.len() <= 4 && host_pids.len() > procs.len(),
        "sandbox sees {} processes: {ps}",
        procs.len()
    );
    assert_eq!(procs[0], (1, 1000, "warden-init".to_string()), "{ps}");
    for (pid, uid, comm) in &procs {
        assert_eq!(*uid, 1000, "foreign uid in sandbox ps: {ps}");
        assert!(
            ["warden-init", "sh", "ps"].contains(&comm.as_str()),
            "foreign process {pid} {comm} in sandbox ps"
        );
    }
    // init, sh, ls, grep, wc: the pipeline counts itself. (Debian's runsc
    // (2022) answers coreutils' statx with EINVAL: Python lists instead.)
    let (count, look) = match tier {
        Tier::Native => (
            "ls /proc | grep -E '^[0-9]+$' | wc -l".to_string(),
            format!("ls -d /proc/{me}"),
        ),
        Tier::Gvisor => (
            "python3 -c \"import os; print(sum(p.isdigit() for p in os.listdir('/proc')))\"".into(),
            format!("python3 -c \"import os; os.stat('/proc/{me}')\""),
        ),
    };
    let numeric = sb.ok(&count).await.trim().parse::<usize>().unwrap();
    assert!(numeric <= 5, "{numeric} pids in the sandbox's /proc");
    assert!(!procs.iter().any(|p| p.0 == me));
    let out = sb.sh(&look).await;
    assert_ne!(out.status.code, Some(0));
    assert!(
        text(&out.stderr).contains("No such file or directory"),
        "{}",
        text(&out.stderr)
    );
}

/// `kill -9 -1` reaches only the sandbox, even a host process that runs
/// under the very host uid the sandbox user maps to; the init shrugs off
/// SIGKILL/SIGSTOP from inside, and the sandbox keeps answering.
async fn kill_all_from_inside_stays_inside(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    // Same host uid as the sandbox user: only the PID namespace protects it.
    // Under gVisor the sandbox's processes are the Sentry's tasks; on the
    // host the Sentry and its stubs run as nobody (65534), so the victim
    // does too: only the Sentry keeps kill(-1) inside.
    let uid = match tier {
        Tier::Native => host_base(&sb).await + 1000,
        Tier::Gvisor => 65534,
    };
    let mut victim = Command::new("/usr/bin/sleep")
        .arg("60")
        .uid(uid)
        .gid(uid)
        .spawn()
        .expect("host victim");
    let mut other_victim = Command::new("/usr/bin/sleep").arg("60").spawn().unwrap();
    // Control: a process inside the sandbox is reached by the same kill.
    let inner = sb
        .client
        .spawn(ExecRequest::shell("sleep 60"))
        .await
        .unwrap();
    let out = sb.sh("kill -9 -1; echo kill-rc=$?").await;
    assert!(text(&out.stdout).contains("kill-rc=0"), "{out:?}");
    let st = sb.client.wait(inner).await.unwrap();
    assert_eq!(
        st.signal,
        Some(9),
        "kill -9 -1 did not reach the sandbox's own process"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        victim.try_wait().unwrap().is_none(),
        "host process (same host uid) was killed"
    );
    assert!(
        other_victim.try_wait().unwrap().is_none(),
        "host process was killed"
    );
    match tier {
        // PID 1 of the namespace ignores SIGKILL/SIGSTOP sent from inside.
        Tier::Native => {
            let out = sb
                .sh("kill -STOP 1; kill -KILL 1; sleep 0.2; echo sent")
                .await;
            assert_eq!(text(&out.stdout), "sent\n", "{out:?}");
            assert_eq!(sb.ok("echo alive").await, "alive\n");
        }
        // The Sentry (2022) does not shield its PID 1 from its own tasks:
        // the init shares their uid, so SIGKILL from inside ends the
        // sandbox. Self-harm only: the host's processes live on, and the
        // host tears the dead sandbox down cleanly (`Sb`'s leftover check).
        Tier::Gvisor => {
            tier.skip(
                "PID 1 ignoring SIGKILL/SIGSTOP from inside",
                "gVisor delivers them: the sandbox can end itself, nothing more",
            );
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                sb.client.exec_collect(ExecRequest::shell("kill -KILL 1")),
            )
            .await;
            let gone = tokio::time::timeout(
                Duration::from_secs(10),
                sb.client.exec_collect(ExecRequest::shell("echo alive")),
            )
            .await;
            assert!(
                !matches!(gone, Ok(Ok(_))),
                "init survived SIGKILL: {gone:?}"
            );
        }
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    other_victim.kill().unwrap();
    other_victim.wait().unwrap();
}

/// Sandbox A holds a secret file, a process whose argv carries the secret, a
/// TCP listener and an abstract Unix socket. Sandbox B, running at the same
/// time, finds none of them; A itself (the control) finds all of them.
async fn other_sandbox_is_unreachable(tier: Tier) {
    let a = Sb::default_on(tier).await;
    let b = Sb::default_on(tier).await;
    let tok = token();
    a.client
        .write_file(&format!("/scratch/secret-{tok}"), 0o600, tok.as_bytes())
        .await
        .unwrap();
    a.client
        .write_file(&format!("/dev/shm/shm-{tok}"), 0o600, tok.as_bytes())
        .await
        .unwrap();
    let holder = dedent(&format!(
        r#"
        import socket, time
        t = socket.socket(); t.bind(('127.0.0.1', 0)); t.listen()
        u = socket.socket(socket.AF_UNIX); u.bind('\0warden-{tok}'); u.listen()
        open('/scratch/port', 'w').write(str(t.getsockname()[1]))
        time.sleep(120)
        "#
    ));
    a.client
        .spawn(ExecRequest::argv([
            "/usr/bin/python3".to_string(),
            "-c".into(),
            holder,
            format!("holder-{tok}"),
        ]))
        .await
        .unwrap();
    let mut port = String::new();
    for _ in 0..100 {
        if let Ok(p) = a.client.read_file("/scratch/port").await {
            if !p.is_empty() {
                port = text(&p);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(!port.is_empty(), "holder never started");

    // The token is passed in two halves so no probe's own argv contains it.
    let (h1, h2) = tok.split_at(8);
    let search = r#"
        t = sys.argv[1] + sys.argv[2]
        port = int(sys.argv[3])
        f = subprocess.run(['find', '/', '-name', '*' + t + '*'], capture_output=True, text=True)
        out('files', ','.join(sorted(f.stdout.split())))
        procs = []
        for p in os.listdir('/proc'):
            if p.isdigit() and int(p) != os.getpid():
                try:
                    if t.encode() in open(f'/proc/{p}/cmdline', 'rb').read():
                        procs.append(p)
                except OSError:
                    pass
        out('procs', ','.join(procs))
        roots = []
        for p in os.listdir('/proc'):
            if p.isdigit():
                try:
                    roots += [n for n in os.listdir(f'/proc/{p}/root/scratch') if t in n]
                except OSError:
                    pass
        out('roots', len(roots))
        out('tcp', tryf(lambda: socket.create_connection(('127.0.0.1', port), timeout=3)))
        u = socket.socket(socket.AF_UNIX)
        out('unix', tryf(lambda: u.connect('\0warden-' + t)))
    "#;
    let mine = probe_args(&a, search, &[h1, h2, &port]).await;
    assert!(
        get(&mine, "files").contains(&format!("/scratch/secret-{tok}")),
        "{mine:?}"
    );
    assert!(
        get(&mine, "files").contains(&format!("/dev/shm/shm-{tok}")),
        "{mine:?}"
    );
    assert!(!get(&mine, "procs").is_empty(), "{mine:?}");
    assert_ne!(get(&mine, "roots"), "0", "{mine:?}");
    assert_eq!(get(&mine, "tcp"), "OK", "{mine:?}");
    assert_eq!(get(&mine, "unix"), "OK", "{mine:?}");

    let theirs = probe_args(&b, search, &[h1, h2, &port]).await;
    assert_eq!(get(&theirs, "files"), "", "B found A's files: {theirs:?}");
    assert_eq!(
        get(&theirs, "procs"),
        "",
        "B sees A's processes: {theirs:?}"
    );
    assert_eq!(get(&theirs, "roots"), "0", "{theirs:?}");
    assert_eq!(get(&theirs, "tcp"), "ECONNREFUSED", "{theirs:?}");
    assert_eq!(get(&theirs, "unix"), "ECONNREFUSED", "{theirs:?}");
    let out = b
        .ok("python3 -c \"import os; print(os.listdir('/scratch'), os.listdir('/dev/shm'))\"")
        .await;
    assert!(!out.contains(&tok), "{out}");
}

/// The sandbox's 127.0.0.1 is its own: a host listener is unreachable
/// (ECONNREFUSED, not a timeout), while a listener inside on the same port
/// works. No route to metadata endpoints; `lo` is the only interface; a host
/// abstract Unix socket is out of reach.
async fn network_is_loopback_only(tier: Tier) {
    use std::os::linux::net::SocketAddrExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Control: the host listener is real.
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    drop(listener.accept().unwrap());
    listener.set_nonblocking(true).unwrap();
    let tok = token();
    let abs =
        std::os::unix::net::SocketAddr::from_abstract_name(format!("warden-host-{tok}")).unwrap();
    let ulistener = std::os::unix::net::UnixListener::bind_addr(&abs).unwrap();
    drop(std::os::unix::net::UnixStream::connect_addr(&abs).expect("host abstract control"));
    drop(ulistener.accept().unwrap());
    ulistener.set_nonblocking(true).unwrap();

    let sb = Sb::default_on(tier).await;
    let r = probe_args(
        &sb,
        r#"
        port = int(sys.argv[1])
        out('host', tryf(lambda: socket.create_connection(('127.0.0.1', port), timeout=3)))
        s = socket.socket(); s.bind(('127.0.0.1', port)); s.listen()
        out('own', tryf(lambda: socket.create_connection(('127.0.0.1', port), timeout=3)))
        out('meta4', tryf(lambda: socket.create_connection(('169.254.169.254', 80), timeout=3)))
        out('meta6', tryf(lambda: socket.create_connection(('fd00:ec2::254', 80), timeout=3)))
        out('lan', tryf(lambda: socket.create_connection(('10.0.0.1', 80), timeout=3)))
        out('ifaces', ','.join(sorted(n for _, n in socket.if_nameindex())))
        lines = open('/proc/net/dev').read().splitlines()[2:]
        out('netdev', ','.join(l.split(':')[0].strip() for l in lines))
        out('sysnet', tryf(lambda: os.listdir('/sys/class/net')))
        out('sysnet_list', ','.join(os.listdir('/sys/class/net')) if os.path.isdir('/sys/class/net') else 'none')
        u = socket.socket(socket.AF_UNIX)
        out('abstract', tryf(lambda: u.connect('\0warden-host-' + sys.argv[2])))
        "#,
        &[&port.to_string(), &tok],
    )
    .await;
    assert_eq!(get(&r, "host"), "ECONNREFUSED", "{r:?}");
    assert_eq!(
        get(&r, "own"),
        "OK",
        "control: loopback inside works: {r:?}"
    );
    for k in ["meta4", "meta6", "lan"] {
        expect(
            tier,
            &r,
            k,
            &["ENETUNREACH"],
            &["EHOSTUNREACH"],
            "the Sentry's netstack has no route",
        );
    }
    assert_eq!(get(&r, "ifaces"), "lo", "{r:?}");
    assert_eq!(get(&r, "netdev"), "lo", "{r:?}");
    match tier {
        Tier::Native => assert_eq!(get(&r, "sysnet"), "ENOENT", "{r:?}"),
        // The Sentry's own sysfs, listing its own interfaces.
        Tier::Gvisor => assert!(
            ["", "lo"].contains(&get(&r, "sysnet_list")),
            "gVisor sysfs: {r:?}"
        ),
    }
    assert_eq!(get(&r, "abstract"), "ECONNREFUSED", "{r:?}");
    // Nothing reached the host's listeners.
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    assert_eq!(
        ulistener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    // Control: the host has more than loopback.
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(host.lines().skip(2).count() > 1, "host has only lo?");
}

/// The sandbox's cgroup namespace should be rooted at its own cgroups, so
/// `/proc/self/cgroup` says `/` for every hierarchy. It is created by the
/// clone *before* the host moves the child into its cgroups, so the paths
/// leak the host's cgroup layout (`/warden/slot-N`, and for the memory
/// controller the launcher's own cgroup as `/../../...`).
async fn cgroup_namespace_hides_host_cgroup_paths(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    // (gVisor's is empty: the Sentry shows no cgroups at all.)
    let cg = sb.ok("cat /proc/self/cgroup").await;
    for line in cg.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert_eq!(
            path, "/",
            "host cgroup path visible in the sandbox: {line:?}\n{cg}"
        );
    }
}

both_tiers!(
    host_processes_are_invisible,
    kill_all_from_inside_stays_inside,
    other_sandbox_is_unreachable,
    network_is_loopback_only,
    cgroup_namespace_hides_host_cgroup_paths,
);

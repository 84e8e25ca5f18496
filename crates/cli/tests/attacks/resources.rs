//! Attacks stopped by: cgroups and rlimits.

use super::helpers::*;

// ===========================================================================
// Layer: cgroups and rlimits (resource exhaustion)
// ===========================================================================

/// A fork bomb under a pids limit of 64 hits EAGAIN inside; the host stays
/// responsive meanwhile; the sandbox is controllable afterwards and its
/// destruction is quick.
async fn fork_bomb_is_contained(tier: Tier) {
    if tier == Tier::Gvisor {
        return fork_bomb_under_gvisor().await;
    }
    let sb = Sb::on(tier, spec(|s| s.limits.pids = Some(64))).await;
    let r = probe(
        &sb,
        r#"
        r, w = os.pipe()
        n, err = 0, 'none'
        while n < 10000:
            try:
                pid = os.fork()
            except OSError as e:
                err = ename(e.errno)
                break
            if pid == 0:
                os.close(w)
                os.read(r, 1)
                os._exit(0)
            n += 1
        out('forks', n)
        out('errno', err)
        "#,
    )
    .await;
    assert_eq!(get(&r, "errno"), "EAGAIN", "{r:?}");
    let forks: u64 = get(&r, "forks").parse().unwrap();
    assert!(
        forks < 64 && forks > 32,
        "{forks} forks under a limit of 64"
    );

    // Let the probe's children finish exiting, so the bomb's leader gets
    // its first fork.
    for _ in 0..100 {
        if stats(&sb).pids <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The classic shell bomb, killed by its timeout. The leader forks once,
    // before the bomb exists, then outlives it with builtins only: were it
    // to die of a failed fork, the timeout (which kills the group only
    // while the leader runs) would not fire.
    let pid = sb.client.spawn(shell_bomb()).await.unwrap();
    assert_host_responsive_during_bomb().await;
    let st = stats(&sb);
    assert!(st.pids <= 65, "pids {} above the limit", st.pids);
    let exit = sb.client.wait(pid).await.unwrap();
    assert!(exit.timed_out, "{exit:?}");
    // The sandbox answers again once the bomb is gone.
    let mut alive = false;
    for _ in 0..30 {
        if let Ok(out) = sb
            .client
            .exec_collect(ExecRequest::shell("echo alive"))
            .await
        {
            if text(&out.stdout) == "alive\n" {
                alive = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(alive, "sandbox unusable after the fork bomb");
    // Start another bomb and destroy the sandbox in the middle of it.
    sb.client
        .spawn(ExecRequest::shell("b(){ b|b& }; b"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    sb.destroy();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "destroy took {:?}",
        t.elapsed()
    );
}

/// The classic shell bomb, ended by a 3 s timeout.
fn shell_bomb() -> ExecRequest {
    let mut req = ExecRequest::shell("b(){ b|b& }; (b); while :; do :; done");
    req.timeout_ms = Some(3000);
    req
}

/// Once a bomb has had 300 ms to grow, `/bin/true` on the host keeps
/// finishing within a second, ten times over a second.
async fn assert_host_responsive_during_bomb() {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        assert!(Command::new("/bin/true").status().unwrap().success());
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        worst < Duration::from_secs(1),
        "host stalled {worst:?} during the fork bomb"
    );
}

/// Under gVisor (ptrace platform) every task of the sandbox has a host
/// thread in the sandbox's cgroup, whose pids limit is the spec's plus the
/// Sentry's own threads: a fork bomb hits that limit and takes the whole
/// sandbox down (the Sentry cannot make another stub), instead of EAGAIN
/// inside. What must hold: the host stays responsive, the cgroup caps the
/// bomb, and destroying the sandbox is quick and leaves nothing.
async fn fork_bomb_under_gvisor() {
    use warden_runtime::gvisor::bundle::GVISOR_HOST_THREADS;
    let sb = Sb::on(Tier::Gvisor, spec(|s| s.limits.pids = Some(64))).await;
    assert_eq!(sb.ok("echo alive").await, "alive\n", "control");
    let stream = sb
        .client
        .stream(warden_protocol::Request::Exec(shell_bomb()));
    assert_host_responsive_during_bomb().await;
    let st = stats(&sb);
    assert!(
        st.pids <= 64 + GVISOR_HOST_THREADS,
        "host threads {} above the cgroup's limit",
        st.pids
    );
    drop(stream);
    let t = Instant::now();
    sb.destroy();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "destroy took {:?}",
        t.elapsed()
    );
}

/// The most a 64 MiB sandbox's peak may read: cgroup v1 charges a page
/// before it reclaims or OOM-kills, so `max_usage_in_bytes` can pass the
/// limit by a page or a charge batch (67,112,960 was seen: one page over).
const PEAK_CAP: u64 = (64 << 20) + (256 << 10);

/// Allocating 512 MiB under a 64 MiB limit gets the process OOM-killed
/// inside the sandbox; the cgroup counts it; the sandbox survives.
async fn memory_bomb_is_oom_killed(tier: Tier) {
    let sb = Sb::on(
        tier,
        spec(|s| {
            s.limits.memory_bytes = Some(64 << 20);
            s.limits.swap_bytes = Some(0);
        }),
    )
    .await;
    // Control: a modest allocation is fine.
    let out = py_args(&sb, "x = b'\\x01' * (16 << 20)\nout('ok', len(x))", &[]).await;
    assert_eq!(out.status.code, Some(0), "{out:?}");
    if tier == Tier::Gvisor {
        // The host's memory cgroup holds the Sentry itself: its OOM kill
        // ends the whole sandbox rather than the one process.
        let argv = [
            "/usr/bin/python3",
            "-c",
            "x = b'\\x01' * (512 << 20); print('survived')",
        ];
        let out = sb.client.exec_collect(ExecRequest::argv(argv)).await;
        // (An error instead: the sandbox went down mid-command.)
        if let Ok(o) = &out {
            assert!(
                o.status.signal == Some(9) && !text(&o.stdout).contains("survived"),
                "not OOM-killed: {o:?}"
            );
        }
        let st = stats(&sb);
        assert!(st.oom_kills >= 1, "{st:?}");
        assert!(st.memory_peak_bytes <= PEAK_CAP, "{st:?}");
        return;
    }
    let out = py_args(
        &sb,
        "x = b'\\x01' * (512 << 20)\nout('survived', len(x))",
        &[],
    )
    .await;
    assert_eq!(out.status.signal, Some(9), "not OOM-killed: {out:?}");
    assert!(!text(&out.stdout).contains("survived"));
    let st = stats(&sb);
    assert!(st.oom_kills >= 1, "{st:?}");
    assert!(st.memory_peak_bytes <= PEAK_CAP, "{st:?}");
    assert_eq!(sb.ok("echo alive").await, "alive\n");
}

/// A CPU burner in two processes gets no more than its quota (0.5 CPU).
async fn cpu_burn_is_throttled(tier: Tier) {
    let sb = Sb::on(tier, spec(|s| s.limits.cpu_millicores = Some(500))).await;
    let before = stats(&sb).cpu_usage_ns;
    let t = Instant::now();
    let mut req = ExecRequest::shell("while :; do :; done & while :; do :; done");
    req.timeout_ms = Some(1500);
    let out = sb.client.exec_collect(req).await.unwrap();
    assert!(out.status.timed_out);
    let wall = t.elapsed().as_nanos() as u64;
    let used = stats(&sb).cpu_usage_ns - before;
    // 0.5 CPU, with slack for the CFS period granularity.
    assert!(
        used < wall * 7 / 10,
        "used {used} ns of CPU in {wall} ns of wall time under a 0.5 CPU limit"
    );
    assert!(used > wall / 10, "control: the burner did run ({used} ns)");
}

/// Each writable tmpfs (and /dev/shm) stops at the disk limit with ENOSPC.
async fn disk_fill_hits_enospc(tier: Tier) {
    let sb = Sb::on(tier, spec(|s| s.limits.disk_bytes = 8 << 20)).await;
    let r = probe(
        &sb,
        r#"
        chunk = b'\0' * (1 << 20)
        for d in ['/scratch', '/tmp', '/output', '/dev/shm']:
            total, err = 0, 'none'
            try:
                for i in range(10):
                    with open(f'{d}/f{i}', 'wb') as f:
                        for _ in range(3):
                            f.write(chunk)
                            f.flush()
                            total += len(chunk)
            except OSError as e:
                err = ename(e.errno)
            st = os.statvfs(d)
            out(d, f'{err}:{total}:{st.f_blocks * st.f_frsize}')
        "#,
    )
    .await;
    for d in ["/scratch", "/tmp", "/output", "/dev/shm"] {
        let v: Vec<&str> = get(&r, d).split(':').collect();
        assert_eq!(v[0], "ENOSPC", "{d}: {r:?}");
        let total: u64 = v[1].parse().unwrap();
        assert!(
            (6 << 20..=8 << 20).contains(&total),
            "{d}: {total} bytes written under an 8 MiB limit"
        );
        assert_eq!(v[2], (8u64 << 20).to_string(), "{d} size");
    }
}

/// One file larger than the disk limit fails with EFBIG (RLIMIT_FSIZE),
/// even sparse, where the tmpfs size would never be reached.
async fn file_size_limit_is_enforced(tier: Tier) {
    let sb = Sb::on(tier, spec(|s| s.limits.disk_bytes = 8 << 20)).await;
    let r = probe(
        &sb,
        r#"
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        fd = os.open('/scratch/big', os.O_CREAT | os.O_WRONLY)
        out('trunc_7m', tryf(lambda: os.ftruncate(fd, 7 << 20)))
        out('trunc_9m', tryf(lambda: os.ftruncate(fd, 9 << 20)))
        out('trunc_10g', tryf(lambda: os.ftruncate(fd, 10 << 30)))
        out('pwrite_7m', tryf(lambda: os.pwrite(fd, b'x', 7 << 20)))
        out('pwrite_past', tryf(lambda: os.pwrite(fd, b'x', (8 << 20) + 1)))
        "#,
    )
    .await;
    assert_eq!(get(&r, "trunc_7m"), "OK", "control: {r:?}");
    assert_eq!(get(&r, "pwrite_7m"), "OK", "control: {r:?}");
    for k in ["trunc_9m", "trunc_10g", "pwrite_past"] {
        assert_eq!(get(&r, k), "EFBIG", "{k}: {r:?}");
    }
    // The shell way: dd dies of SIGXFSZ ("File size limit exceeded") at 8 MiB.
    // (Debian's runsc (2022) answers coreutils' statx with EINVAL.)
    let size = match tier {
        Tier::Native => "stat -c %s /output/one",
        Tier::Gvisor => "python3 -c \"import os; print(os.stat('/output/one').st_size)\"",
    };
    let out = sb
        .sh(&format!(
            "dd if=/dev/zero of=/output/one bs=1M count=16 2>/dev/null; echo rc=$?; {size}"
        ))
        .await;
    assert_eq!(
        text(&out.stdout),
        format!("rc={}\n{}\n", 128 + libc::SIGXFSZ, 8 << 20)
    );
}

/// Creating empty files stops with ENOSPC at the tmpfs inode cap, far
/// below what would hurt the host.
async fn inode_exhaustion_is_capped(tier: Tier) {
    if tier == Tier::Gvisor {
        return inode_exhaustion_under_gvisor().await;
    }
    let sb = Sb::on(tier, spec(|s| s.limits.disk_bytes = 8 << 20)).await;
    let r = probe(
        &sb,
        r#"
        for d in ['/tmp', '/dev/shm']:
            n, err = 0, 'none'
            try:
                while n < 2000000:
                    os.close(os.open(f'{d}/i{n}', os.O_CREAT | os.O_WRONLY))
                    n += 1
            except OSError as e:
                err = ename(e.errno)
            out(d, f'{err}:{n}')
        "#,
    )
    .await;
    for d in ["/tmp", "/dev/shm"] {
        let (err, n) = get(&r, d).split_once(':').unwrap();
        let n: u64 = n.parse().unwrap();
        assert_eq!(err, "ENOSPC", "{d}: {r:?}");
        assert!((1000..5000).contains(&n), "{d}: {n} files before ENOSPC");
    }
}

/// gVisor's tmpfs has no inode cap (`nr_inodes`): empty files cost only
/// the Sentry's memory, so the memory cgroup is what stops them, taking
/// the sandbox down at its limit, well before the host would notice.
async fn inode_exhaustion_under_gvisor() {
    let sb = Sb::on(
        Tier::Gvisor,
        spec(|s| {
            s.limits.disk_bytes = 8 << 20;
            s.limits.memory_bytes = Some(64 << 20);
            s.limits.swap_bytes = Some(0);
        }),
    )
    .await;
    let body = "n = 0\nwhile n < 2000000:\n    os.close(os.open(f'/dev/shm/i{n}', os.O_CREAT | os.O_WRONLY))\n    n += 1\nout('n', n)";
    let out = sb
        .client
        .exec_collect(ExecRequest::argv(["/usr/bin/python3", "-c", &script(body)]))
        .await;
    if let Ok(o) = &out {
        assert!(
            text(&o.stderr).contains("No space left") || o.status.signal == Some(9),
            "two million files fitted: {o:?}"
        );
    }
    let st = stats(&sb);
    // cgroup v1's max_usage may record the one page charged past the limit
    // that triggered the OOM kill.
    assert!(st.memory_peak_bytes <= (64 << 20) + 4096, "{st:?}");
}

/// Opening descriptors stops at RLIMIT_NOFILE.
async fn descriptor_exhaustion_is_capped(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let r = probe(
        &sb,
        r#"
        fds, err = [], 'none'
        try:
            while len(fds) < 1000000:
                fds.append(os.open('/dev/null', os.O_RDONLY))
        except OSError as e:
            err = ename(e.errno)
        out('err', err)
        out('n', len(fds))
        "#,
    )
    .await;
    assert_eq!(get(&r, "err"), "EMFILE", "{r:?}");
    let n: u64 = get(&r, "n").parse().unwrap();
    assert!((900..1024).contains(&n), "{n} descriptors");
}

both_tiers!(
    fork_bomb_is_contained,
    memory_bomb_is_oom_killed,
    cpu_burn_is_throttled,
    disk_fill_hits_enospc,
    file_size_limit_is_enforced,
    inode_exhaustion_is_capped,
    descriptor_exhaustion_is_capped,
);

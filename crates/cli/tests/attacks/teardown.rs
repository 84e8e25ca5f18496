//! Attacks stopped by: cgroups (a sandbox's end): a daemon started in a
//! sandbox dies with it, and a sandbox crippled from inside is still
//! destroyed in full.

use super::helpers::*;

/// A double-forked, setsid'd daemon that closed its stdio lives on after
/// its command, but dies with the sandbox. Checked on the host: the process
/// (found by a unique argv) runs under the sandbox's uid range before and
/// is gone after destroy.
async fn daemon_dies_with_its_sandbox(tier: Tier) {
    if tier == Tier::Gvisor {
        return daemon_dies_under_gvisor().await;
    }
    let sb = Sb::default_on(tier).await;
    let base = host_base(&sb).await;
    let secs = format!(
        "{}",
        3_000_000_000u64 + u64::from_str_radix(&token()[..8], 16).unwrap()
    );
    let out = py_args(
        &sb,
        r#"
        if os.fork():
            os._exit(0)
        os.setsid()
        if os.fork():
            os._exit(0)
        n = os.open('/dev/null', os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(n, fd)
        os.execv('/usr/bin/sleep', ['sleep', sys.argv[1]])
        "#,
        &[&secs],
    )
    .await;
    assert_eq!(out.status.code, Some(0), "{out:?}");
    let mut pids = Vec::new();
    for _ in 0..100 {
        pids = host_pids_with_cmdline(&["sleep", &secs]);
        if !pids.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    assert_eq!(pids.len(), 1, "daemon not found on the host");
    let hp = pids[0];
    let uid = host_uid_of(hp).unwrap();
    assert_eq!(uid, base + 1000, "daemon runs as host uid {uid}");
    // The host sees the sandbox's processes (init + daemon) in its uid range.
    let ps = text(
        &Command::new("ps")
            .args(["-eo", "uid="])
            .output()
            .unwrap()
            .stdout,
    );
    let in_range = ps
        .split_whitespace()
        .filter_map(|u| u.parse::<u64>().ok())
        .filter(|u| (u64::from(base)..u64::from(base) + 65536).contains(u))
        .count();
    assert!(
        in_range >= 2,
        "{in_range} host processes in the sandbox's uid range"
    );
    // Still alive after its command ended: a real daemon.
    assert!(sb.ok("ps -eo comm=").await.contains("sleep"));
    sb.destroy();
    assert!(
        host_pids_with_cmdline(&["sleep", &secs]).is_empty(),
        "daemon {hp} outlived its sandbox"
    );
    assert!(
        host_uid_of(hp) != Some(uid),
        "host pid {hp} still runs under the sandbox's uid"
    );
}

/// Under gVisor the daemon is one of the Sentry's tasks, never a host
/// process: it is seen inside, nowhere on the host, and the destroyed
/// sandbox leaves no host process behind (`Sb`'s leftover check).
async fn daemon_dies_under_gvisor() {
    let sb = Sb::default_on(Tier::Gvisor).await;
    let secs = format!(
        "{}",
        3_000_000_000u64 + u64::from_str_radix(&token()[..8], 16).unwrap()
    );
    let line =
        format!("setsid sh -c 'exec sleep {secs}' </dev/null >/dev/null 2>&1 & echo started");
    assert_eq!(sb.ok(&line).await, "started\n");
    let mut seen = false;
    for _ in 0..100 {
        if sb.ok("ps -eo args=").await.contains(&secs) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(seen, "daemon not running inside");
    assert!(
        host_pids_with_cmdline(&["sleep", &secs]).is_empty(),
        "a gVisor task is a host process"
    );
    sb.destroy();
}

/// Code inside can cripple its own init (same uid: prlimit on PID 1, stop
/// signals are ignored but sent), but the host still destroys the sandbox
/// promptly and takes every process with it.
async fn crippled_sandbox_is_still_destroyed(tier: Tier) {
    if tier == Tier::Gvisor {
        // kill -STOP 1 freezes the Sentry's init mid-reply (the command
        // never reports back); that self-harm, and the clean teardown
        // after it, are covered by kill_all_from_inside_stays_inside.
        return tier.skip(
            "crippling the init with prlimit and SIGSTOP",
            "gVisor does not shield PID 1 from SIGSTOP, so the probe itself hangs",
        );
    }
    let sb = Sb::default_on(tier).await;
    let secs = format!(
        "{}",
        3_100_000_000u64 + u64::from_str_radix(&token()[..8], 16).unwrap()
    );
    sb.client
        .spawn(ExecRequest::argv([
            "/usr/bin/sleep".to_string(),
            secs.clone(),
        ]))
        .await
        .unwrap();
    let out = sb
        .sh("prlimit --pid 1 --nofile=3:3 --nproc=1:1; kill -STOP 1; echo done")
        .await;
    assert!(text(&out.stdout).contains("done"), "{out:?}");
    // The init can no longer start commands (self-inflicted) ...
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        sb.client.exec_collect(ExecRequest::shell("echo hi")),
    )
    .await;
    assert!(
        !matches!(&r, Ok(Ok(o)) if o.stdout == b"hi\n"),
        "init unaffected by its own rlimits? {r:?}"
    );
    // (Under gVisor the sleep is a task of the Sentry, not a host process.)
    let host_procs = if tier == Tier::Gvisor { 0 } else { 1 };
    assert_eq!(
        host_pids_with_cmdline(&["/usr/bin/sleep", &secs]).len(),
        host_procs
    );
    // ... but the host is not at its mercy.
    let t = Instant::now();
    sb.destroy();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "destroy took {:?}",
        t.elapsed()
    );
    assert!(host_pids_with_cmdline(&["/usr/bin/sleep", &secs]).is_empty());
}

both_tiers!(
    daemon_dies_with_its_sandbox,
    crippled_sandbox_is_still_destroyed,
);

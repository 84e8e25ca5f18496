//! Real cgroup v1 tests (this host is hybrid => v1 controllers). Need root.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use warden_cgroups::{CgroupError, Limits, Manager, Mode};

const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];

fn dir(ctrl: &str, env: &Env, name: &str) -> PathBuf {
    PathBuf::from(format!(
        "/sys/fs/cgroup/{ctrl}/{}/{name}",
        env.mgr().parent()
    ))
}

/// Skips (returns None) on hosts that are not v1/hybrid.
fn v1_env(tag: &str) -> Option<Env> {
    let env = Env::detect(tag);
    if env.mgr().mode() != Mode::V1 {
        eprintln!("host is not cgroup v1/hybrid; skipping");
        return None;
    }
    Some(env)
}

#[test]
fn create_readback_destroy() {
    let Some(env) = v1_env("limits") else { return };
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        memory_swap_bytes: Some(0),
        cpu_millicores: Some(500),
        pids_max: Some(16),
    };
    let cg = env.create("sbx", &limits);
    assert_eq!(cg.name(), "sbx");
    let mem = dir("memory", &env, "sbx");
    assert_eq!(
        read(mem.join("memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(mem.join("memory.memsw.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(read(mem.join("memory.swappiness")), "0");
    assert!(read(mem.join("memory.oom_control")).contains("oom_kill_disable 0"));
    let cpu = dir("cpu", &env, "sbx");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(dir("pids", &env, "sbx").join("pids.max")), "16");
    for c in CONTROLLERS {
        assert!(dir(c, &env, "sbx").is_dir(), "{c} group missing");
    }

    // Swap allowance is added on top of memory for memsw.
    let cg2 = env.create(
        "swap",
        &Limits {
            memory_bytes: Some(32 << 20),
            memory_swap_bytes: Some(16 << 20),
            ..Default::default()
        },
    );
    let mem2 = dir("memory", &env, "swap");
    assert_eq!(
        read(mem2.join("memory.memsw.limit_in_bytes")),
        (48u64 << 20).to_string()
    );
    assert_eq!(
        read(mem2.join("memory.limit_in_bytes")),
        (32u64 << 20).to_string()
    );

    assert!(matches!(
        env.mgr().create("sbx", &Limits::default()),
        Err(CgroupError::AlreadyExists { .. })
    ));
    assert_eq!(env.mgr().list().unwrap(), vec!["sbx", "swap"]);
    assert!(env.mgr().open("nope").unwrap().is_none());
    let second_handle = env.mgr().open("sbx").unwrap().expect("open sbx");

    cg.destroy().expect("destroy");
    cg2.destroy().expect("destroy swap");
    for c in CONTROLLERS {
        assert!(!dir(c, &env, "sbx").exists(), "{c} group left behind");
    }
    // Idempotent: destroying an already removed group succeeds.
    second_handle.destroy().expect("second destroy");
    assert!(env.mgr().open("sbx").unwrap().is_none());
    assert!(env.mgr().list().unwrap().is_empty());
}

#[test]
fn kill_all_kills_process_and_setsid_daemon() {
    let Some(env) = v1_env("kill") else { return };
    let cg = env.create("sbx", &Limits::default());
    let mut sleep = spawn_sleep();
    cg.add_pid(sleep.pid()).unwrap();
    let mut sh = daemonizer();
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    let daemon: i32 = sh.read_line().parse().expect("daemon pid");
    assert_ne!(sid(daemon), sid(0), "daemon should be in its own session");

    let pids = cg.pids().unwrap();
    for p in [sleep.pid(), sh.pid(), daemon] {
        assert!(pids.contains(&p), "{p} not in {pids:?}");
    }
    cg.kill_all().expect("kill_all");
    assert!(cg.pids().unwrap().is_empty());
    assert_eq!(sleep.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(sh.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(wait_dead(daemon), "daemon {daemon} survived");
    cg.destroy().unwrap();
}

#[test]
fn pids_limit_blocks_fork() {
    let Some(env) = v1_env("pids") else { return };
    let cg = env.create(
        "sbx",
        &Limits {
            pids_max: Some(5),
            ..Default::default()
        },
    );
    let mut sh = gated("for i in 1 2 3 4 5 6 7 8; do sleep 100 >/dev/null 2>&1 & done; wait");
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    let st = sh.wait_timeout(Duration::from_secs(10));
    let mut err = String::new();
    std::io::Read::read_to_string(sh.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!st.success(), "shell should fail to fork: {st:?}");
    assert!(err.to_lowercase().contains("fork"), "stderr: {err}");
    let n = cg.stats().unwrap().pids_current.expect("pids.current");
    assert!((1..=5).contains(&n), "pids_current {n}");
    let events = read(dir("pids", &env, "sbx").join("pids.events"));
    assert_ne!(events, "max 0", "pids.events: {events}");
    cg.destroy().unwrap();
}

#[test]
fn memory_limit_oom_kills() {
    let Some(env) = v1_env("oom") else { return };
    let limit = 32u64 << 20;
    let cg = env.create(
        "sbx",
        &Limits {
            memory_bytes: Some(limit),
            memory_swap_bytes: Some(0),
            ..Default::default()
        },
    );
    // tail keeps everything it reads until it sees a newline: /dev/zero has none.
    let mut sh = gated("head -c 200M /dev/zero | tail >/dev/null");
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    let st = sh.wait_timeout(Duration::from_secs(60));
    assert_eq!(st.code(), Some(128 + libc::SIGKILL), "{st:?}");
    let s = cg.stats().unwrap();
    assert!(s.oom_kills.expect("oom_kill counter") >= 1, "{s:?}");
    let peak = s.memory_peak.expect("peak");
    assert!(peak > limit / 2 && peak <= limit, "peak {peak}");
    cg.destroy().unwrap();
}

#[test]
fn stats_report_cpu_usage() {
    let Some(env) = v1_env("cpu") else { return };
    let cg = env.create(
        "sbx",
        &Limits {
            cpu_millicores: Some(1000),
            ..Default::default()
        },
    );
    assert!(cg.stats().unwrap().cpu_usage_ns.unwrap() == 0);
    let mut sh = gated("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done");
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    assert!(sh.wait_timeout(Duration::from_secs(30)).success());
    let s = cg.stats().unwrap();
    assert!(s.cpu_usage_ns.unwrap() > 1_000_000, "{s:?}");
    assert!(
        s.memory_current.is_some() && s.pids_current == Some(0),
        "{s:?}"
    );
    assert_eq!(s.oom_kills, Some(0));
    cg.destroy().unwrap();
}

#[test]
fn rejects_bad_input() {
    let Some(env) = v1_env("bad") else { return };
    for bad in ["", "..", "a/b", "x.y"] {
        assert!(matches!(
            env.mgr().create(bad, &Limits::default()),
            Err(CgroupError::InvalidName { .. })
        ));
        assert!(matches!(
            env.mgr().open(bad),
            Err(CgroupError::InvalidName { .. })
        ));
    }
    assert!(matches!(
        Manager::detect("../etc"),
        Err(CgroupError::InvalidName { .. })
    ));
    assert!(matches!(
        env.mgr().create(
            "s",
            &Limits {
                memory_swap_bytes: Some(0),
                ..Default::default()
            }
        ),
        Err(CgroupError::InvalidLimits(_))
    ));
    let cg = env.create("s", &Limits::default());
    assert!(matches!(cg.add_pid(0), Err(CgroupError::InvalidPid(0))));
    assert!(matches!(cg.add_pid(-1), Err(CgroupError::InvalidPid(-1))));
    // A pid that does not exist: the kernel's ESRCH comes back typed.
    let e = cg.add_pid(i32::MAX).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "{e}");
    cg.destroy().unwrap();
}

#[test]
fn groups_without_freezer_and_removing_an_emptied_group() {
    let Some(env) = v1_env("nofreeze") else {
        return;
    };
    let mgr = env.mgr().clone().without_freezer();
    let cg = mgr.create("sbx", &Limits::default()).unwrap();
    assert!(!dir("freezer", &env, "sbx").exists());
    assert!(dir("memory", &env, "sbx").exists());
    // A process ran in it and was reaped: its lifetime figures remain.
    let mut sh = gated("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done");
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    assert!(sh.wait_timeout(Duration::from_secs(30)).success());
    let stats = cg.lifetime_stats().unwrap();
    assert!(stats.cpu_usage_ns.unwrap_or(0) > 0, "{stats:?}");
    assert!(stats.memory_peak.unwrap_or(0) > 0, "{stats:?}");
    assert_eq!((stats.memory_current, stats.pids_current), (None, None));
    cg.remove_emptied().unwrap();
    for c in CONTROLLERS {
        assert!(!dir(c, &env, "sbx").exists(), "{c}");
    }
    // Not empty after all: the full kill-and-remove path takes over.
    let cg = mgr.create("busy", &Limits::default()).unwrap();
    let mut sleep = spawn_sleep();
    cg.add_pid(sleep.pid()).unwrap();
    cg.remove_emptied().unwrap();
    assert_eq!(sleep.wait().unwrap().signal(), Some(libc::SIGKILL));
    for c in CONTROLLERS {
        assert!(!dir(c, &env, "busy").exists(), "{c}");
    }
}

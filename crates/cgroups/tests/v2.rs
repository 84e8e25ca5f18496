//! cgroup v2 code paths, exercised on the hybrid host's controller-less
//! cgroup2 mount (/sys/fs/cgroup/unified): groups, cgroup.procs and
//! cgroup.kill work there; memory/pids/cpu controllers do not exist.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use warden_cgroups::{CgroupError, Limits, Mode};

fn v2_env(tag: &str) -> Option<Env> {
    if !Path::new(UNIFIED).join("cgroup.procs").exists() {
        eprintln!("no cgroup2 mount at {UNIFIED}; skipping");
        return None;
    }
    Some(Env::v2(tag))
}

#[test]
fn v2_lifecycle_without_controllers() {
    let Some(env) = v2_env("v2life") else { return };
    assert_eq!(env.mgr().mode(), Mode::V2);
    let cg = env.create("sbx", &Limits::default());
    let dir = Path::new(UNIFIED).join(env.mgr().parent()).join("sbx");
    assert_eq!(cg.paths(), vec![dir.as_path()]);
    assert!(dir.join("cgroup.kill").exists());
    assert!(matches!(
        env.mgr().create("sbx", &Limits::default()),
        Err(CgroupError::AlreadyExists { .. })
    ));
    assert_eq!(env.mgr().list().unwrap(), vec!["sbx"]);

    let mut sleep = spawn_sleep();
    cg.add_pid(sleep.pid()).unwrap();
    let mut sh = daemonizer();
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    let daemon: i32 = sh.read_line().parse().expect("daemon pid");
    assert_ne!(sid(daemon), sid(0));
    let pids = cg.pids().unwrap();
    for p in [sleep.pid(), sh.pid(), daemon] {
        assert!(pids.contains(&p), "{p} not in {pids:?}");
    }

    cg.kill_all().expect("kill_all");
    assert!(cg.pids().unwrap().is_empty());
    assert_eq!(sleep.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(sh.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(wait_dead(daemon), "daemon {daemon} survived");

    // Only core accounting exists without controllers.
    let s = cg.stats().unwrap();
    assert!(s.cpu_usage_ns.is_some(), "{s:?}");
    assert_eq!(
        (s.memory_current, s.pids_current, s.oom_kills),
        (None, None, None)
    );

    let again = env.mgr().open("sbx").unwrap().expect("open");
    cg.destroy().expect("destroy");
    assert!(!dir.exists());
    again.destroy().expect("idempotent destroy");
    assert!(env.mgr().open("sbx").unwrap().is_none());
}

#[test]
fn v2_cpu_usage_counts() {
    let Some(env) = v2_env("v2cpu") else { return };
    let cg = env.create("sbx", &Limits::default());
    let mut sh = gated("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done");
    cg.add_pid(sh.pid()).unwrap();
    sh.release();
    assert!(sh.wait_timeout(Duration::from_secs(30)).success());
    assert!(cg.stats().unwrap().cpu_usage_ns.unwrap() > 1_000_000);
    cg.destroy().unwrap();
}

#[test]
fn v2_missing_controllers_are_typed_errors() {
    let Some(env) = v2_env("v2ctl") else { return };
    let cases: [(Limits, &str); 4] = [
        (
            Limits {
                memory_bytes: Some(64 << 20),
                ..Default::default()
            },
            "memory",
        ),
        (
            Limits {
                memory_bytes: Some(64 << 20),
                memory_swap_bytes: Some(0),
                ..Default::default()
            },
            "memory",
        ),
        (
            Limits {
                pids_max: Some(10),
                ..Default::default()
            },
            "pids",
        ),
        (
            Limits {
                cpu_millicores: Some(500),
                ..Default::default()
            },
            "cpu",
        ),
    ];
    for (limits, want) in cases {
        match env.mgr().create("sbx", &limits) {
            Err(CgroupError::ControllerUnavailable { controller, path }) => {
                assert_eq!(controller, want);
                assert!(
                    path.ends_with("cgroup.subtree_control"),
                    "{}",
                    path.display()
                );
            }
            other => panic!("{limits:?}: expected ControllerUnavailable, got {other:?}"),
        }
        // Nothing may be left behind by a rejected create.
        assert!(env.mgr().list().unwrap().is_empty());
    }
}

//! Pre-started sandboxes (`native/prestart.rs`): a start takes one whose
//! limits match, and its waiting init becomes the sandbox; a start with
//! other limits takes every step itself and switches the pool over; a
//! runtime that goes away kills its waiting inits and removes their groups.
//!
//! A runtime of its own (own state directory and cgroup parent), so the
//! counts here see nothing of other tests' sandboxes.

mod common;

use common::{init_bin, Sb};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use warden_runtime::native::{prestart::POOL_SIZE, NativeConfig, NativeRuntime};
use warden_spec::SandboxSpec;

const STATE: &str = "/run/warden-test-prestart";
const PARENT: &str = "warden-test-prestart";

/// Removes the test's groups and state however the test ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ctrl in ["memory", "pids", "cpu", "cpuacct", "freezer"] {
            let dir = Path::new("/sys/fs/cgroup").join(ctrl).join(PARENT);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for g in rd.flatten().filter(|g| g.path().is_dir()) {
                    let procs = std::fs::read_to_string(g.path().join("cgroup.procs"));
                    for pid in procs.unwrap_or_default().split_whitespace() {
                        if let Ok(pid) = pid.parse::<i32>() {
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                        }
                    }
                    for _ in 0..100 {
                        if std::fs::remove_dir(g.path()).is_ok() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
        let _ = std::fs::remove_dir_all(STATE);
    }
}

fn group(ctrl: &str, name: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(PARENT)
        .join(name)
}

fn procs(name: &str) -> Vec<i32> {
    std::fs::read_to_string(group("pids", name).join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The host uid a process runs as.
fn uid(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

fn ready(rt: &NativeRuntime) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = rt.prestarted_cgroups();
        if ready.len() >= POOL_SIZE || Instant::now() > deadline {
            return ready;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prestarted_sandboxes_follow_the_limits_and_go_with_the_runtime() {
    let _cleanup = Cleanup;
    let rt = NativeRuntime::new(NativeConfig {
        init_path: init_bin(),
        state_dir: STATE.into(),
        cgroup_parent: PARENT.into(),
        favor_dynmods: true,
        prestart: POOL_SIZE,
    })
    .expect("native runtime");
    let first = ready(&rt);
    assert_eq!(first.len(), POOL_SIZE, "{first:?}");
    // Each waits as one process, the init, not yet in the sandbox's ids.
    let waiting: Vec<i32> = first.iter().map(|n| procs(n)).map(|p| p[0]).collect();
    for (name, pid) in first.iter().zip(&waiting) {
        assert_eq!(procs(name), [*pid], "{name}");
        assert_eq!(uid(*pid), 0, "{name}: set up before being asked");
    }

    // A start with the default limits takes the oldest: its init is the
    // sandbox's PID 1 now, running as the slot's ids.
    let sb = Sb::start_on(&rt, SandboxSpec::default()).await;
    let out = sb.sh("id -u; cat /proc/1/comm").await;
    assert_eq!(out.status.code, Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1000\nwarden-init\n");
    assert!(!rt.prestarted_cgroups().contains(&first[0]));
    assert!(procs(&first[0]).contains(&waiting[0]));
    let base = warden_runtime::native::slots::UID_BASE;
    assert!(uid(waiting[0]) >= base, "the init took the slot's ids");
    drop(sb);
    assert!(!group("pids", &first[0]).exists(), "its group went with it");

    // Other limits: taken on the spot, and the pool switches over.
    let mut small = SandboxSpec::default();
    small.limits.memory_bytes = Some(96 << 20);
    let sb = Sb::start_on(&rt, small.clone()).await;
    assert_eq!(sb.sh("true").await.status.code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    let limit = |name: &String| {
        std::fs::read_to_string(group("memory", name).join("memory.limit_in_bytes"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let switched = loop {
        let now = ready(&rt);
        if now.iter().all(|n| limit(n) == (96u64 << 20).to_string()) || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(switched.len(), POOL_SIZE);
    for name in &switched {
        assert_eq!(limit(name), (96u64 << 20).to_string(), "{name}");
    }
    // The ones made for the old limits were discarded, inits and all.
    for (name, pid) in first.iter().zip(&waiting).skip(1) {
        assert!(!group("pids", name).exists() || switched.contains(name));
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{pid} lives");
    }
    drop(sb);

    // The runtime going away takes its waiting inits and groups with it.
    let waiting: Vec<i32> = switched.iter().flat_map(|n| procs(n)).collect();
    drop(rt);
    for pid in waiting {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
        assert!(status.is_err(), "{pid} lives: {status:?}");
    }
    for name in &switched {
        assert!(!group("pids", name).exists(), "{name} left behind");
    }
}

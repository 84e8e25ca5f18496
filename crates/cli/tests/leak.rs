//! 1,000 create -> exec -> destroy cycles leave nothing behind: no process
//! in a sandbox uid range, no mount, no cgroup (beyond those of the
//! runtime's few pre-started sandboxes), no directory, no network namespace
//! held beyond the runtime's small pool of fresh ones.
//!
//! A single test in its own binary, so no other sandbox runs while it counts.

mod common;

use common::{init_bin, Sb, CGROUP_PARENT, STATE_DIR};
use std::collections::BTreeSet;
use warden_runtime::native::prestart::POOL_SIZE;
use warden_runtime::native::slots::{IDS_PER_SLOT, MAX_SLOTS, UID_BASE};
use warden_runtime::native::{NativeConfig, NativeRuntime};
use warden_spec::SandboxSpec;

#[derive(Debug, PartialEq, Eq)]
struct Census {
    sandbox_processes: Vec<(u32, u32)>,
    mounts: usize,
    cgroups: BTreeSet<String>,
    state_entries: BTreeSet<String>,
    staging_entries: usize,
}

/// The cgroups of the runtime's pre-started sandboxes, once its pool is
/// full again (they belong to no sandbox yet, like its pooled network
/// namespaces). Each holds nothing but its own init, waiting for its
/// set-up.
fn pooled(rt: &NativeRuntime) -> BTreeSet<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ready = rt.prestarted_cgroups();
        if ready.len() >= POOL_SIZE || std::time::Instant::now() > deadline {
            assert!(ready.len() <= POOL_SIZE, "{ready:?}");
            for name in &ready {
                let procs = std::path::Path::new("/sys/fs/cgroup/pids")
                    .join(CGROUP_PARENT)
                    .join(name)
                    .join("cgroup.procs");
                let procs = std::fs::read_to_string(&procs).unwrap_or_default();
                let pids: Vec<&str> = procs.split_whitespace().collect();
                assert_eq!(pids.len(), 1, "pre-started {name} holds {procs}");
                let comm = std::fs::read_to_string(format!("/proc/{}/comm", pids[0]));
                assert_eq!(comm.unwrap_or_default().trim(), "warden-init");
            }
            return ready.into_iter().collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// What exists now, leaving out the cgroups of `rt`'s pre-started
/// sandboxes (none once it is gone).
fn census(rt: Option<&NativeRuntime>) -> Census {
    let pooled = rt.map(pooled).unwrap_or_default();
    let mut procs = Vec::new();
    for ent in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(ent.path().join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if let Some(uid) = uid {
            if (UID_BASE..UID_BASE + MAX_SLOTS * IDS_PER_SLOT).contains(&uid) {
                procs.push((pid, uid));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let mut cgroups = BTreeSet::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if let Ok(rd) = std::fs::read_dir(ctrl.path().join(CGROUP_PARENT)) {
            for g in rd.flatten() {
                let name = g.file_name().to_string_lossy().into_owned();
                if g.file_type().map(|t| t.is_dir()).unwrap_or(false) && !pooled.contains(&name) {
                    cgroups.insert(format!(
                        "{}/{}",
                        ctrl.file_name().to_string_lossy(),
                        g.file_name().to_string_lossy()
                    ));
                }
            }
        }
    }
    let list = |p: &str| -> BTreeSet<String> {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    Census {
        sandbox_processes: procs,
        mounts,
        cgroups,
        state_entries: list(STATE_DIR),
        staging_entries: list(&format!("{STATE_DIR}/root")).len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cycles_leave_nothing_behind() {
    // A runtime of its own, configured as `warden serve` runs it (sandboxes
    // pre-started), dropped at the end so its own state is counted too.
    let rt = NativeRuntime::new(NativeConfig {
        init_path: init_bin(),
        state_dir: STATE_DIR.into(),
        cgroup_parent: CGROUP_PARENT.into(),
        favor_dynmods: true,
        prestart: POOL_SIZE,
    })
    .expect("native runtime");
    // One cycle first, so the runtime's own one-time state (slot files, the
    // cgroup parent, the staging directory) exists before counting.
    Sb::start_on(&rt, SandboxSpec::default()).await.destroy();
    let before = census(Some(&rt));
    assert!(before.sandbox_processes.is_empty(), "{before:?}");
    for i in 0..1000 {
        let sb = Sb::start_on(&rt, SandboxSpec::default()).await;
        // Something that leaves work behind if teardown were sloppy: a
        // daemon in its own session, a file in each writable tmpfs.
        let line = if i % 100 == 0 {
            "setsid sh -c 'sleep 600 &' ; echo x > /scratch/f; echo y > /output/g; true"
        } else {
            "true"
        };
        let out = sb.sh(line).await;
        assert_eq!(out.status.code, Some(0), "cycle {i}: {out:?}");
        sb.destroy();
    }
    let after = census(Some(&rt));
    assert_eq!(before, after, "state changed across 1,000 cycles");
    // The pool holds at most its few unused namespaces (besides the host's
    // own, which its thread keeps to return to); one kept per sandbox would
    // show here as hundreds.
    let home = std::fs::read_link("/proc/self/ns/net").unwrap();
    let held = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("net:[") && *l != home)
        .count();
    assert!(
        held <= warden_runtime::native::netns::POOL_SIZE,
        "{held} network namespace fds held"
    );
    assert_eq!(
        after.staging_entries, 0,
        "the staging directory is not empty"
    );
    // Gone with the runtime: its pre-started sandboxes, inits and groups.
    drop(rt);
    assert_eq!(census(None), before, "the runtime left state behind");
}

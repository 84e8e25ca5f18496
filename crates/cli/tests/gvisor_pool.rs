//! Pre-started gVisor sandboxes (`warden_runtime::gvisor::pool`): a start
//! of the pooled shape takes a booted sandbox and still gets its own
//! environment and working directory, never anything of an earlier
//! sandbox's; any other shape starts on the spot and the pool follows it;
//! what the pool holds is removed with the runtime; a pooled sandbox is
//! warmed up before it is handed out and keeps no process of the warm-up.

mod common;

use common::{gvisor_leftovers, init_bin, Sb, CGROUP_PARENT, STATE_DIR};
use std::time::{Duration, Instant};
use warden_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warden_spec::{Isolation, SandboxSpec};

/// How many threads the sandbox's init has.
const INIT_THREADS: &str = "set -- /proc/1/task/*; echo $#";

fn pooled_runtime() -> GvisorRuntime {
    GvisorRuntime::new(GvisorConfig {
        init_path: init_bin(),
        state_dir: STATE_DIR.into(),
        cgroup_parent: CGROUP_PARENT.into(),
        prestart: 1,
        ..Default::default()
    })
    .expect("gVisor runtime (runsc installed? `make test` installs it)")
}

fn spec(env: &[(&str, &str)]) -> SandboxSpec {
    SandboxSpec {
        isolation: Isolation::Gvisor,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..SandboxSpec::default()
    }
}

/// The pool's waiting sandboxes once `until` holds (it fills in the
/// background: a gVisor boot is ~0.1-1 s).
fn pool_when(rt: &GvisorRuntime, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let t = Instant::now();
    loop {
        let ready = rt.prestarted();
        if until(&ready) {
            return ready;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the pool never got there: {ready:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until nothing of sandbox `id` is left (a discarded pool sandbox
/// is removed on the pool's thread).
fn gone(id: &str) {
    let t = Instant::now();
    loop {
        let left = gvisor_leftovers(id);
        if left.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{id} left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_sandboxes_are_fresh_and_get_their_own_configuration() {
    let rt = pooled_runtime();
    assert!(
        rt.prestarted().is_empty(),
        "nothing boots before gVisor is used"
    );
    // The first start boots on the spot and teaches the pool its shape.
    let first = Sb::start_on(&rt, spec(&[("SECRET", "first")])).await;
    // Control for the warm-up below: a sandbox started on the spot is not
    // warmed, so its first command is its first process after the init.
    assert_eq!(
        first.ok("echo $$ /proc/[0-9]*").await,
        "2 /proc/1 /proc/2\n"
    );
    // Nor has its init a thread for file work yet (it starts at the first).
    assert_eq!(first.ok(INIT_THREADS).await, "1\n");
    assert_eq!(
        first.ok("echo $SECRET; echo mark > /scratch/mark").await,
        "first\n"
    );
    first.destroy();
    let waiting = pool_when(&rt, |r| r.len() == 1);
    // Same shape, another environment and working directory: served from
    // the pool (its id was the waiting one), configured at hand-out.
    let mut second_spec = spec(&[("SECRET", "second")]);
    second_spec.workdir = "/tmp".into();
    let second = Sb::start_on(&rt, second_spec).await;
    let id = second.sandbox.as_ref().map(|s| s.id().to_string());
    assert_eq!(
        id.as_deref(),
        Some(waiting[0].as_str()),
        "not from the pool"
    );
    // It was warmed up in the pool (its first command is not its first
    // process), and nothing the warm-up ran is still there: the only
    // processes are the init and this shell (`echo` and the glob are the
    // shell's own).
    let procs = second.ok("echo $$ /proc/[0-9]*").await;
    let pid: u32 = procs
        .split(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {procs:?}"));
    assert!(pid > 2, "the pooled sandbox was not warmed up: {procs:?}");
    assert_eq!(
        procs,
        format!("{pid} /proc/1 /proc/{pid}\n"),
        "a process of the warm-up outlived it"
    );
    // The warm-up left the init's thread for file work waiting.
    assert_eq!(second.ok(INIT_THREADS).await, "2\n");
    assert_eq!(
        second
            .ok("echo $SECRET; pwd; ls -A /scratch | wc -l; cat /etc/hostname; id -u")
            .await,
        "second\n/tmp\n0\nsandbox\n1000\n",
        "a pooled sandbox saw another's state or missed its own configuration"
    );
    second.destroy();

    // Another shape (a memory limit): started on the spot; the pool drops
    // what it had and boots the new shape.
    let before = pool_when(&rt, |r| r.len() == 1);
    let mut other = spec(&[]);
    other.limits.memory_bytes = Some(300 << 20);
    let third = Sb::start_on(&rt, other).await;
    let third_id = third.sandbox.as_ref().map(|s| s.id().to_string());
    assert_ne!(third_id.as_deref(), Some(before[0].as_str()));
    gone(&before[0]);
    let after = pool_when(&rt, |r| r.len() == 1 && r[0] != before[0]);
    assert_eq!(third.ok("echo on the spot").await, "on the spot\n");
    third.destroy();

    // A shape the pool cannot make (an /input): on the spot, pool as is.
    let input = tempfile::tempdir().expect("tempdir");
    std::fs::write(input.path().join("in.txt"), "input\n").expect("write");
    let mut with_input = spec(&[]);
    with_input.limits.memory_bytes = Some(300 << 20);
    with_input.input_dir = Some(input.path().to_string_lossy().into_owned());
    let fourth = Sb::start_on(&rt, with_input).await;
    assert_eq!(fourth.ok("cat /input/in.txt").await, "input\n");
    assert_eq!(
        rt.prestarted(),
        after,
        "a shape the pool cannot make changed it"
    );
    fourth.destroy();

    // The runtime goes: so does every sandbox it held ready.
    drop(rt);
    for id in after {
        assert!(
            gvisor_leftovers(&id).is_empty(),
            "{id}: {:#?}",
            gvisor_leftovers(&id)
        );
    }
}

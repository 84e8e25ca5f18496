//! Attacks on kernel resources every sandbox and the host draw from: one
//! sandbox takes all it can get and holds on, then another sandbox and the
//! host (this test process, root) must still get theirs. The control: the
//! hog did get up to its own cap, for the reason the cap gives.

use super::helpers::*;
use warden_inside::setup::{MAX_INOTIFY_INSTANCES, MAX_PTYS};

/// Runs `body` (a Python probe that takes what it can and prints
/// `key=value` lines) in the background in `sb`, and returns its report
/// once it is holding everything it got: the probe writes the report to a
/// file and then sleeps, so the resources stay taken until the sandbox is
/// destroyed.
async fn hold(sb: &Sb, body: &str) -> HashMap<String, String> {
    let body = format!(
        "{}\nwith open('/tmp/held.tmp', 'w') as f:\n    f.write(REPORT)\nos.rename('/tmp/held.tmp', '/tmp/held')\ntime.sleep(600)\n",
        dedent(body)
    );
    let argv = vec!["/usr/bin/python3".to_string(), "-c".into(), script(&body)];
    sb.client
        .spawn(ExecRequest::argv(argv))
        .await
        .expect("start the hog");
    let t0 = Instant::now();
    loop {
        if let Ok(report) = sb.client.read_file("/tmp/held").await {
            return kv(&report);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the hog never reported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host's per-user limit on inotify instances.
fn host_inotify_limit() -> u32 {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

const INOTIFY_PROBE: &str = r#"
fd = libc.inotify_init1(0)
out('inotify', 'OK' if fd >= 0 else ename(ctypes.get_errno()))
"#;

/// One sandbox holds as many inotify instances as it can get. The kernel
/// charges a user namespace's instances to the namespace's owner too; with
/// every namespace made by host root, that was host root's allowance (128),
/// shared by every sandbox and the host's own services: the hog took it
/// all and `inotify_init` failed with EMFILE everywhere else. Each sandbox's
/// namespace now belongs to its slot's uid, and the sandbox has its own cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_instances_are_charged_per_sandbox() {
    let hog = Sb::default().await;
    let other = Sb::default().await;
    let held = hold(
        &hog,
        r#"
        fds = []
        while True:
            fd = libc.inotify_init1(0)
            if fd < 0:
                err = ename(ctypes.get_errno())
                break
            fds.append(fd)
        REPORT = f'count={len(fds)}\nerr={err}\n'
        "#,
    )
    .await;
    // The control: the hog got exactly its cap, and was refused for it.
    let cap = MAX_INOTIFY_INSTANCES.min(host_inotify_limit());
    assert_eq!(get(&held, "err"), "EMFILE", "{held:?}");
    assert_eq!(get(&held, "count"), cap.to_string(), "{held:?}");
    // Another sandbox and the host still get theirs.
    let r = probe(&other, INOTIFY_PROBE).await;
    assert_eq!(get(&r, "inotify"), "OK", "another sandbox: {r:?}");
    let r = host_probe(INOTIFY_PROBE);
    assert_eq!(get(&r, "inotify"), "OK", "host root: {r:?}");
}

/// One sandbox opens ptys until it is refused. All devpts instances but the
/// host's share one pool (`kernel.pty.max` - `kernel.pty.reserve`, 3,072 by
/// default): without a cap the hog took the whole pool and /dev/ptmx failed
/// with ENOSPC in every other sandbox. Each sandbox's devpts now has `max=`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ptys_are_capped_per_sandbox() {
    // Descriptors enough for the whole pool, so RLIMIT_NOFILE is not what
    // stops the hog.
    let hog = Sb::start(spec(|s| s.limits.nofile = 8192)).await;
    let other = Sb::default().await;
    let held = hold(
        &hog,
        r#"
        fds = []
        while True:
            try:
                fds.append(os.open('/dev/ptmx', os.O_RDWR | os.O_NOCTTY))
            except OSError as e:
                err = ename(e.errno)
                break
        REPORT = f'count={len(fds)}\nerr={err}\n'
        "#,
    )
    .await;
    assert_eq!(get(&held, "err"), "ENOSPC", "{held:?}");
    assert_eq!(get(&held, "count"), MAX_PTYS.to_string(), "{held:?}");
    let r = probe(
        &other,
        r#"
        out('pty', tryf(lambda: os.openpty()))
        "#,
    )
    .await;
    assert_eq!(get(&r, "pty"), "OK", "another sandbox: {r:?}");
}

/// PID 1's command line is the first thing a curious sandbox reads: it
/// showed the init binary's host path (where Warden is installed, e.g. a
/// build directory), and under gVisor the init's whole configuration. Now
/// both tiers show `warden-init` and its flags only.
async fn init_cmdline_names_no_host_path(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let cmdline = sb
        .client
        .read_file("/proc/1/cmdline")
        .await
        .expect("read /proc/1/cmdline");
    let argv: Vec<String> = text(&cmdline)
        .split('\0')
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(
        argv.first().map(String::as_str),
        Some("warden-init"),
        "{argv:?}"
    );
    let init = init_bin();
    let host_dir = init.parent().unwrap().to_string_lossy().into_owned();
    for a in &argv {
        assert!(
            !a.contains(&host_dir) && !a.contains('/') && !a.contains('{'),
            "PID 1's argv shows {a:?}: {argv:?}"
        );
    }
    // The control: the same file shows the argv of the command reading it.
    let own = sb
        .client
        .exec_collect(ExecRequest::argv(["/bin/cat", "/proc/self/cmdline"]))
        .await
        .expect("cat");
    assert_eq!(text(&own.stdout), "/bin/cat\0/proc/self/cmdline\0");
}

both_tiers!(init_cmdline_names_no_host_path);

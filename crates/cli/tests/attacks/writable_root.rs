//! Attacks stopped by: the writable root's own layer (E2B's layout).
//!
//! A sandbox with a writable root may change `/usr`, `/etc` and `/` as if
//! the machine were its own; every change must stay in its own layer (never
//! the host's files, the shared templates or the next sandbox), within the
//! disk limit on the native tier, and `/input`, `/proc/sys` and the
//! sandbox's limits must hold as without it.

use super::common::STATE_DIR;
use super::helpers::*;

fn writable(user: SandboxUser, input: Option<&Path>, disk: u64) -> SandboxSpec {
    spec(|s| {
        s.user = user;
        s.writable_root = true;
        s.input_dir = input.map(|p| p.to_string_lossy().into_owned());
        s.limits.disk_bytes = disk;
    })
}

/// Every host path named `name` under the places a sandbox's root is made
/// from: the host's `/usr` and `/etc`, and the state directory that holds
/// the shared templates and skeletons.
fn host_copies(name: &str) -> String {
    let out = Command::new("find")
        .args(["/usr", "/etc", STATE_DIR, "-xdev", "-name", name])
        .output()
        .expect("find");
    text(&out.stdout)
}

/// Writes 4 MiB files into `dir` until `n` are written or one fails; the
/// probe prints `fill=OK` or the failure's errno.
fn fill(dir: &str, n: u32) -> String {
    format!(
        r#"
res = 'OK'
for i in range({n}):
    try:
        with open(f'{dir}/f{{i}}', 'wb') as fh:
            fh.write(b'\0' * (4 << 20))
    except OSError as e:
        res = ename(e.errno)
        break
out('fill', res)
"#
    )
}

const WRITES: &str = r#"
name = sys.argv[1]
def write(p, data=b'x'):
    def f():
        with open(p, 'wb') as fh:
            fh.write(data)
    return tryf(f)
out('usr', write(f'/usr/local/{name}'))
out('etc', write(f'/etc/{name}'))
out('mkdir', tryf(lambda: os.makedirs(f'/workspace/{name}')))
out('top', write(f'/workspace/{name}/f'))
out('bin', write(f'/usr/bin/{name}'))
"#;

/// Root of a writable-root sandbox changes /usr, /etc and / in its own
/// layer; the host, the templates and the next sandbox see none of it.
/// Control: the same writes fail without a writable root.
async fn writes_stay_in_the_sandboxs_own_layer(tier: Tier) {
    let name = format!("warden-wr-{}", token());
    let sb = Sb::on(tier, writable(SandboxUser::Root, None, 64 << 20)).await;
    let r = probe_args(&sb, WRITES, &[&name]).await;
    for k in ["usr", "etc", "mkdir", "top", "bin"] {
        assert_eq!(get(&r, k), "OK", "{tier:?} {k}: {r:?}");
    }
    // Visible inside...
    let seen = sb
        .ok(&format!(
            "cat /usr/local/{name} /etc/{name} /workspace/{name}/f"
        ))
        .await;
    assert_eq!(seen, "xxx", "{tier:?}");
    // ...and nowhere on the host, while it runs.
    assert_eq!(host_copies(&name), "", "{tier:?}: a write reached the host");
    drop(sb);

    // The next sandbox starts from the image again.
    let next = Sb::on(tier, writable(SandboxUser::Root, None, 64 << 20)).await;
    let r = probe(
        &next,
        &format!(
            "out('usr', tryf(lambda: open('/usr/local/{name}').read()))\n\
             out('ws', tryf(lambda: os.listdir('/workspace')))"
        ),
    )
    .await;
    assert_eq!(get(&r, "usr"), "ENOENT", "{tier:?}: {r:?}");
    assert_eq!(get(&r, "ws"), "ENOENT", "{tier:?}: {r:?}");
    drop(next);

    // Control: the same writes without a writable root.
    let ro = Sb::on(tier, as_user(SandboxUser::Root)).await;
    let r = probe_args(&ro, WRITES, &[&name]).await;
    for k in ["usr", "etc", "mkdir", "bin"] {
        let got = get(&r, k);
        assert!(
            got == "EROFS" || got == "EACCES",
            "{tier:?} read-only root {k}: {got}: {r:?}"
        );
    }
    assert_eq!(host_copies(&name), "", "{tier:?}");
}

/// `/input` stays read-only, `/proc/sys` stays read-only and mounting stays
/// impossible in a writable-root sandbox; what the root's owner reads of
/// the image is still only the image.
async fn what_was_read_only_stays_so(tier: Tier) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "input").unwrap();
    std::fs::set_permissions(
        dir.path().join("in.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let sb = Sb::on(
        tier,
        writable(SandboxUser::Root, Some(dir.path()), 64 << 20),
    )
    .await;
    let r = probe(
        &sb,
        r#"
        out('in_write', tryf(lambda: open('/input/in.txt', 'a').write('x')))
        out('in_new', tryf(lambda: open('/input/new', 'w')))
        out('in_rm', tryf(lambda: os.unlink('/input/in.txt')))
        out('sys', tryf(lambda: open('/proc/sys/kernel/hostname', 'w').write('x')))
        out('sysrq', tryf(lambda: open('/proc/sysrq-trigger', 'w').write('h')))
        out('mount', sc(165, b'none', b'/workspace', b'tmpfs', 0, 0))
        out('shadow', tryf(lambda: open('/etc/shadow').read()))
        "#,
    )
    .await;
    for k in ["in_write", "in_new", "in_rm"] {
        assert_eq!(get(&r, k), "EROFS", "{tier:?} {k}: {r:?}");
    }
    expect(
        tier,
        &r,
        "sys",
        &["EROFS"],
        &["EROFS", "EACCES", "EPERM"],
        "the Sentry's /proc/sys is its own and read-only",
    );
    expect(
        tier,
        &r,
        "sysrq",
        // Absent on kernels built without magic SysRq.
        &["EROFS", "ENOENT"],
        &["ENOENT", "EACCES", "EROFS"],
        "the Sentry has no sysrq-trigger",
    );
    expect(
        tier,
        &r,
        "mount",
        &["EPERM"],
        &["EPERM", "ENOENT"],
        "no capabilities in the Sentry",
    );
    assert_eq!(get(&r, "shadow"), "ENOENT", "{tier:?}: {r:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("in.txt")).unwrap(),
        "input"
    );
}

/// The native tier's writable layer is a tmpfs the size of the disk limit:
/// filling it ends in ENOSPC. (On gVisor the layer is held in the Sentry's
/// memory, bounded by the memory limit instead: docs/security.md.)
async fn the_layer_is_bounded(tier: Tier) {
    let sb = Sb::on(tier, writable(SandboxUser::Root, None, 16 << 20)).await;
    sb.ok("mkdir /workspace").await;
    let r = probe(&sb, &fill("/workspace", 6)).await;
    expect(
        tier,
        &r,
        "fill",
        &["ENOSPC"],
        &["OK"],
        "gVisor keeps the layer in its memory, within the memory limit",
    );
}

/// `user` (E2B's account): its own writable home as working directory,
/// bounded by the disk limit; the image's directories stay root's even
/// with a writable root (EACCES, the kernel's permission check).
async fn the_user_account_has_a_home_of_its_own(tier: Tier) {
    let sb = Sb::on(tier, {
        let mut s = writable(SandboxUser::User, None, 8 << 20);
        s.workdir = warden_spec::USER_HOME.into();
        s
    })
    .await;
    assert_eq!(
        sb.ok("id -un; id -u; pwd; echo $HOME").await,
        "user\n1001\n/home/user\n/home/user\n",
        "{tier:?}"
    );
    let r = probe(
        &sb,
        r#"
        st = os.stat('/home/user')
        out('owner', st.st_uid)
        out('usr', tryf(lambda: open('/usr/local/x', 'w')))
        out('root', tryf(lambda: os.listdir('/root')))
        out('mkdir_top', tryf(lambda: os.mkdir('/workspace')))
        "#,
    )
    .await;
    let filled = probe(&sb, &fill("/home/user", 3)).await;
    assert_eq!(get(&r, "owner"), "1001", "{tier:?}: {r:?}");
    for k in ["usr", "root", "mkdir_top"] {
        assert_eq!(get(&r, k), "EACCES", "{tier:?} {k}: {r:?}");
    }
    assert_eq!(get(&filled, "fill"), "ENOSPC", "{tier:?}: {filled:?}");
}

both_tiers!(
    writes_stay_in_the_sandboxs_own_layer,
    what_was_read_only_stays_so,
    the_layer_is_bounded,
    the_user_account_has_a_home_of_its_own,
);

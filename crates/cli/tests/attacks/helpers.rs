//! Probes and helpers shared by the attack modules.

pub use super::common::{init_bin, text, token, Sb, Tier};
pub use std::collections::{BTreeSet, HashMap};
pub use std::os::unix::fs::{FileTypeExt, MetadataExt};
pub use std::os::unix::process::CommandExt;
pub use std::path::Path;
pub use std::process::Command;
pub use std::time::{Duration, Instant};
pub use warden_protocol::{ExecOutput, ExecRequest};
pub use warden_spec::{SandboxSpec, SandboxUser};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Prepended to every Python probe: raw system calls and errno names.
/// Probes print `key=value` lines, parsed by [`kv`].
pub(crate) const PRELUDE: &str = r#"
import ctypes, errno, os, signal, socket, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def ename(e):
    return errno.errorcode.get(e, str(e))
def sc(nr, *args):
    ctypes.set_errno(0)
    a = [ctypes.c_long(x) if isinstance(x, int) else x for x in args]
    r = libc.syscall(ctypes.c_long(nr), *a)
    return 'OK' if r >= 0 else ename(ctypes.get_errno())
def tryf(f):
    try:
        f()
        return 'OK'
    except OSError as e:
        return ename(e.errno)
def out(k, v):
    print(f'{k}={v}', flush=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
_buf = ctypes.create_string_buffer(64)
_src = ctypes.create_string_buffer(b'warden', 64)
def vm(nr, pid, addr):
    local = iovec(ctypes.cast(_buf, ctypes.c_void_p), 8)
    remote = iovec(addr, 8)
    return sc(nr, pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
SRC_ADDR = ctypes.addressof(_src)
"#;

/// Strips the common leading indentation, so probes can be indented in Rust.
pub(crate) fn dedent(s: &str) -> String {
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    s.lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn script(body: &str) -> String {
    format!("{PRELUDE}\n{}\n", dedent(body))
}

/// Runs a Python probe in the sandbox with extra argv.
pub(crate) async fn py_args(sb: &Sb, body: &str, args: &[&str]) -> ExecOutput {
    let mut argv = vec!["/usr/bin/python3".to_string(), "-c".into(), script(body)];
    argv.extend(args.iter().map(|s| s.to_string()));
    sb.client
        .exec_collect(ExecRequest::argv(argv))
        .await
        .expect("exec python probe")
}

/// `key=value` lines of a probe's output.
pub(crate) fn kv(stdout: &[u8]) -> HashMap<String, String> {
    text(stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs a probe in the sandbox, asserting it completed, and parses it.
pub(crate) async fn probe_args(sb: &Sb, body: &str, args: &[&str]) -> HashMap<String, String> {
    let out = py_args(sb, body, args).await;
    assert_eq!(
        out.status.code,
        Some(0),
        "probe failed: {:?}\nstdout={}\nstderr={}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    kv(&out.stdout)
}

pub(crate) async fn probe(sb: &Sb, body: &str) -> HashMap<String, String> {
    probe_args(sb, body, &[]).await
}

/// The same probe as root on the host (the control).
pub(crate) fn host_probe(body: &str) -> HashMap<String, String> {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script(body))
        .output()
        .expect("host python3");
    assert!(
        out.status.success(),
        "host probe failed: {}",
        text(&out.stderr)
    );
    kv(&out.stdout)
}

pub(crate) fn get<'a>(m: &'a HashMap<String, String>, k: &str) -> &'a str {
    m.get(k)
        .unwrap_or_else(|| panic!("probe printed no {k:?}: {m:?}"))
}

pub(crate) fn spec(f: impl FnOnce(&mut SandboxSpec)) -> SandboxSpec {
    let mut s = SandboxSpec::default();
    f(&mut s);
    s
}

pub(crate) fn as_user(user: SandboxUser) -> SandboxSpec {
    spec(|s| s.user = user)
}

pub(crate) const USERS: [SandboxUser; 2] = [SandboxUser::Sandbox, SandboxUser::Root];

pub(crate) fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The first host uid of the sandbox's range, read from its own uid_map.
pub(crate) async fn host_base(sb: &Sb) -> u32 {
    let map = sb.ok("cat /proc/self/uid_map").await;
    let f: Vec<u32> = map.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!((f[0], f[2]), (0, 65536), "uid_map {map:?}");
    assert!(
        f[1] >= 0x1000_0000,
        "sandbox mapped onto a low host uid: {map:?}"
    );
    f[1]
}

/// Host pids whose argv is exactly `argv`.
pub(crate) fn host_pids_with_cmdline(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let mut pids = Vec::new();
    for ent in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(ent.path().join("cmdline")).ok().as_deref() == Some(&want[..]) {
            pids.push(pid);
        }
    }
    pids
}

pub(crate) fn host_uid_of(pid: u32) -> Option<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = st.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn stats(sb: &Sb) -> warden_runtime::SandboxStats {
    sb.sandbox.as_ref().unwrap().stats().expect("stats")
}

/// Asserts what the probe printed for `k`: `native` on the native tier
/// (exactly what the native layer answers), one of `gvisor` on the gVisor
/// tier, where `why` names what stops it there (the Sentry answers the
/// system call itself; the host kernel never sees it).
pub(crate) fn expect(
    tier: Tier,
    r: &HashMap<String, String>,
    k: &str,
    native: &[&str],
    gvisor: &[&str],
    why: &str,
) {
    let got = get(r, k);
    match tier {
        Tier::Native => assert!(native.contains(&got), "{k}: {got}, want {native:?}: {r:?}"),
        Tier::Gvisor => assert!(
            gvisor.contains(&got),
            "gVisor {k}: {got}, want {gvisor:?} ({why}): {r:?}"
        ),
    }
}

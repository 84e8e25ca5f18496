//! The security attack suite: hostile code inside real native sandboxes tries
//! to break out, and every attempt must fail *for the right reason*. Each
//! probe checks the errno or message it gets, and, where it makes sense, a
//! control runs the same probe where it should work (on the host as root, or
//! inside the sandbox on an allowed target), so no test can pass because a
//! tool was missing or a probe was malformed.
//!
//! Probes are written with what the host's `/usr` holds: `sh`, coreutils and
//! `python3` (raw system calls through `ctypes`). System call numbers are
//! x86_64's; the seccomp group only builds there.
//!
//! | Attack | Stopped by |
//! |---|---|
//! | read host `/etc/shadow`, `/root` | mount namespace + synthesised `/etc` (no shadow), private empty `/root` (0700) |
//! | read another sandbox's `/scratch`, see its processes, reach its sockets | mount, PID, network (incl. abstract Unix sockets) namespaces; per-sandbox tmpfs |
//! | see host processes | PID namespace (fresh `/proc`) |
//! | `kill -9 -1`, SIGKILL/SIGSTOP PID 1 | PID namespace (kill(-1) stays inside; the namespace init ignores them) |
//! | host process under the sandbox's own host uid | PID namespace (uid alone would allow the signal) |
//! | ptrace PID 1, read `/proc/1/{mem,environ,maps,exe,fd}` | init non-dumpable (+ no CAP_SYS_PTRACE); seccomp for ptrace |
//! | overwrite `/proc/1/exe`, `/proc/self/exe`, the init binary | init binary not in the sandbox's tree; non-dumpable init; read-only `/usr` + Landlock |
//! | create files in `/`, `/usr`, `/etc`, `/dev`, `/sys` | read-only root tmpfs and binds (EROFS), Landlock |
//! | write/unlink/chmod in `/input` (even 0777/0666 on the host), symlink in input to `/etc/shadow` | read-only bind (EROFS); links resolve in the sandbox's own tree |
//! | host sockets under `/run`, `/var/run` | mount namespace (`/run` empty, no `/var`) |
//! | write `/proc/sys/kernel/{hostname,core_pattern}`, `/proc/sysrq-trigger` | read-only bind over `/proc/sys` (and sysrq-trigger), Landlock, no capabilities |
//! | cgroup v1 `release_agent`, mount cgroupfs | no `/sys/fs/cgroup` in the sandbox; seccomp (mount) |
//! | open `/dev/kvm`, `/dev/vda`, `/dev/mem`; `mknod` | minimal `/dev` (nodes absent); no CAP_MKNOD |
//! | setuid binaries (`su`, `passwd`, `mount`), `setuid(0)` | `nosuid` mounts + `no_new_privs`; no capabilities |
//! | inherited file descriptors | `close_range` in the launcher, CLOEXEC in the init |
//! | keyctl, bpf, perf_event_open, io_uring, userfaultfd, open_by_handle_at, fanotify | seccomp (EPERM) |
//! | unshare / setns / clone(CLONE_NEW*) / mount / pivot_root / new mount API | seccomp (EPERM), clone3 → ENOSYS |
//! | ptrace, process_vm_readv/writev, kcmp, pidfd_getfd on a sibling | seccomp (EPERM) |
//! | TIOCSTI / TIOCLINUX, incl. `0x1_0000_5412` | seccomp (low 32 bits compared) + `setsid` (no controlling tty) |
//! | AF_PACKET, AF_VSOCK, netlink audit/uevent/diag/generic | seccomp (EPERM) |
//! | x32 system calls, personality(ADDR_NO_RANDOMIZE) | seccomp (x32 guard kills; personality allow-list) |
//! | host `127.0.0.1:<port>`, host abstract socket, 169.254.169.254, fd00:ec2::254 | network namespace (own loopback only, no routes) |
//! | fork bomb | pids cgroup (EAGAIN), cpu cgroup; destroy kills the PID namespace |
//! | memory bomb | memory cgroup (OOM kill inside the sandbox) |
//! | CPU burn | cpu cgroup (CFS quota) |
//! | fill `/scratch`, `/tmp`, `/output`, `/dev/shm` | tmpfs `size=` (ENOSPC) |
//! | one file bigger than the disk limit | RLIMIT_FSIZE (EFBIG / SIGXFSZ) |
//! | inode exhaustion | tmpfs `nr_inodes=` (ENOSPC) |
//! | fd exhaustion | RLIMIT_NOFILE (EMFILE) |
//! | double-forked `setsid` daemon outliving the sandbox | PID namespace: killing PID 1 kills every member |
//! | crippling the init (prlimit on PID 1) | self-harm only; the host still destroys through the pidfd + cgroup |
//! | `/output` symlinks, hard links, FIFO, socket, 10 GB sparse file, `..`/newline/invalid-UTF-8 names, deep nesting | export: strict `openat2` reads (no symlinks, nlink 1, regular files only), name checks, byte budget, depth limit, `cap_std` on the host |
//! | symlink swapped in during export (TOCTOU) | export: `openat2(RESOLVE_NO_SYMLINKS)` at read time |
//!
//! Fixed finding: the cgroup namespace used to be created before the init
//! joined its cgroups, so `/proc/self/cgroup` showed host paths; the init now
//! unshares a fresh cgroup namespace once inside its cgroup.
//!
//! Accepted, documented behaviour (asserted as such below):
//! - root of the sandbox can *list* `/proc/1/fd` (it owns the non-dumpable
//!   init's entries) but cannot follow or open any of them;
//! - code inside runs under the init's uid, so it can lower the init's
//!   rlimits and cripple its own sandbox; the host still destroys it.

mod common;

use common::{init_bin, text, Sb};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use warden_protocol::{ExecOutput, ExecRequest};
use warden_spec::{SandboxSpec, SandboxUser};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Prepended to every Python probe: raw system calls and errno names.
/// Probes print `key=value` lines, parsed by [`kv`].
const PRELUDE: &str = r#"
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
fn dedent(s: &str) -> String {
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

fn script(body: &str) -> String {
    format!("{PRELUDE}\n{}\n", dedent(body))
}

/// Runs a Python probe in the sandbox with extra argv.
async fn py_args(sb: &Sb, body: &str, args: &[&str]) -> ExecOutput {
    let mut argv = vec!["/usr/bin/python3".to_string(), "-c".into(), script(body)];
    argv.extend(args.iter().map(|s| s.to_string()));
    sb.client
        .exec_collect(ExecRequest::argv(argv))
        .await
        .expect("exec python probe")
}

/// `key=value` lines of a probe's output.
fn kv(stdout: &[u8]) -> HashMap<String, String> {
    text(stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs a probe in the sandbox, asserting it completed, and parses it.
async fn probe_args(sb: &Sb, body: &str, args: &[&str]) -> HashMap<String, String> {
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

async fn probe(sb: &Sb, body: &str) -> HashMap<String, String> {
    probe_args(sb, body, &[]).await
}

/// The same probe as root on the host (the control).
fn host_probe(body: &str) -> HashMap<String, String> {
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

fn get<'a>(m: &'a HashMap<String, String>, k: &str) -> &'a str {
    m.get(k)
        .unwrap_or_else(|| panic!("probe printed no {k:?}: {m:?}"))
}

fn spec(f: impl FnOnce(&mut SandboxSpec)) -> SandboxSpec {
    let mut s = SandboxSpec::default();
    f(&mut s);
    s
}

fn as_user(user: SandboxUser) -> SandboxSpec {
    spec(|s| s.user = user)
}

const USERS: [SandboxUser; 2] = [SandboxUser::Sandbox, SandboxUser::Root];

/// A fresh random token (no rand crate in this package).
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn sha256(path: &Path) -> String {
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
async fn host_base(sb: &Sb) -> u32 {
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
fn host_pids_with_cmdline(argv: &[&str]) -> Vec<u32> {
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

fn host_uid_of(pid: u32) -> Option<u32> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = st.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn stats(sb: &Sb) -> warden_runtime::SandboxStats {
    sb.sandbox.as_ref().unwrap().stats().expect("stats")
}

// ===========================================================================
// Layer: namespaces (PID, mount, network, IPC, UTS, user)
// ===========================================================================

/// `ps` and `/proc` inside show only the sandbox's own processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_processes_are_invisible() {
    let sb = Sb::default().await;
    let me = std::process::id();
    // Control: the host's ps sees this test process among many.
    let host = text(
        &Command::new("ps")
            .args(["-eo", "pid="])
            .output()
            .unwrap()
            .stdout,
    );
    let host_pids: BTreeSet<u32> = host
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(host_pids.contains(&me), "host ps misses the test itself");

    let ps = sb.ok("ps -eo pid=,uid=,comm=").await;
    let procs: Vec<(u32, u32, String)> = ps
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_string(),
            )
        })
        .collect();
    assert!(
        procs.len() <= 4 && host_pids.len() > procs.len(),
        "sandbox sees {} processes: {ps}",
        procs.len()
    );
    assert_eq!(procs[0], (1, 1000, "warden-init".to_string()), "{ps}");
    for (pid, uid, comm) in &procs {
        assert_eq!(*uid, 1000, "foreign uid in sandbox ps: {ps}");
        assert!(
            ["warden-init", "sh", "ps"].contains(&comm.as_str()),
            "foreign process {pid} {comm} in sandbox ps"
        );
    }
    // init, sh, ls, grep, wc: the pipeline counts itself.
    let numeric = sb
        .ok("ls /proc | grep -E '^[0-9]+$' | wc -l")
        .await
        .trim()
        .parse::<usize>()
        .unwrap();
    assert!(numeric <= 5, "{numeric} pids in the sandbox's /proc");
    assert!(!procs.iter().any(|p| p.0 == me));
    let out = sb.sh(&format!("ls -d /proc/{me}")).await;
    assert_ne!(out.status.code, Some(0));
    assert!(
        text(&out.stderr).contains("No such file or directory"),
        "{}",
        text(&out.stderr)
    );
}

/// `kill -9 -1` reaches only the sandbox, even a host process that runs
/// under the very host uid the sandbox user maps to; the init shrugs off
/// SIGKILL/SIGSTOP from inside, and the sandbox keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_from_inside_stays_inside() {
    let sb = Sb::default().await;
    let uid = host_base(&sb).await + 1000;
    // Same host uid as the sandbox user: only the PID namespace protects it.
    let mut victim = Command::new("/usr/bin/sleep")
        .arg("60")
        .uid(uid)
        .gid(uid)
        .spawn()
        .expect("host victim");
    let mut other_victim = Command::new("/usr/bin/sleep").arg("60").spawn().unwrap();
    // Control: a process inside the sandbox is reached by the same kill.
    let inner = sb
        .client
        .spawn(ExecRequest::shell("sleep 60"))
        .await
        .unwrap();
    let out = sb.sh("kill -9 -1; echo kill-rc=$?").await;
    assert!(text(&out.stdout).contains("kill-rc=0"), "{out:?}");
    let st = sb.client.wait(inner).await.unwrap();
    assert_eq!(
        st.signal,
        Some(9),
        "kill -9 -1 did not reach the sandbox's own process"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        victim.try_wait().unwrap().is_none(),
        "host process (same host uid) was killed"
    );
    assert!(
        other_victim.try_wait().unwrap().is_none(),
        "host process was killed"
    );
    // PID 1 of the namespace ignores SIGKILL/SIGSTOP sent from inside.
    let out = sb
        .sh("kill -STOP 1; kill -KILL 1; sleep 0.2; echo sent")
        .await;
    assert_eq!(text(&out.stdout), "sent\n", "{out:?}");
    assert_eq!(sb.ok("echo alive").await, "alive\n");
    victim.kill().unwrap();
    victim.wait().unwrap();
    other_victim.kill().unwrap();
    other_victim.wait().unwrap();
}

/// Sandbox A holds a secret file, a process whose argv carries the secret, a
/// TCP listener and an abstract Unix socket. Sandbox B, running at the same
/// time, finds none of them; A itself (the control) finds all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_sandbox_is_unreachable() {
    let a = Sb::default().await;
    let b = Sb::default().await;
    let tok = token();
    a.client
        .write_file(&format!("/scratch/secret-{tok}"), 0o600, tok.as_bytes())
        .await
        .unwrap();
    a.client
        .write_file(&format!("/dev/shm/shm-{tok}"), 0o600, tok.as_bytes())
        .await
        .unwrap();
    let holder = dedent(&format!(
        r#"
        import socket, time
        t = socket.socket(); t.bind(('127.0.0.1', 0)); t.listen()
        u = socket.socket(socket.AF_UNIX); u.bind('\0warden-{tok}'); u.listen()
        open('/scratch/port', 'w').write(str(t.getsockname()[1]))
        time.sleep(120)
        "#
    ));
    a.client
        .spawn(ExecRequest::argv([
            "/usr/bin/python3".to_string(),
            "-c".into(),
            holder,
            format!("holder-{tok}"),
        ]))
        .await
        .unwrap();
    let mut port = String::new();
    for _ in 0..100 {
        if let Ok(p) = a.client.read_file("/scratch/port").await {
            if !p.is_empty() {
                port = text(&p);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(!port.is_empty(), "holder never started");

    // The token is passed in two halves so no probe's own argv contains it.
    let (h1, h2) = tok.split_at(8);
    let search = r#"
        t = sys.argv[1] + sys.argv[2]
        port = int(sys.argv[3])
        f = subprocess.run(['find', '/', '-name', '*' + t + '*'], capture_output=True, text=True)
        out('files', ','.join(sorted(f.stdout.split())))
        procs = []
        for p in os.listdir('/proc'):
            if p.isdigit() and int(p) != os.getpid():
                try:
                    if t.encode() in open(f'/proc/{p}/cmdline', 'rb').read():
                        procs.append(p)
                except OSError:
                    pass
        out('procs', ','.join(procs))
        roots = []
        for p in os.listdir('/proc'):
            if p.isdigit():
                try:
                    roots += [n for n in os.listdir(f'/proc/{p}/root/scratch') if t in n]
                except OSError:
                    pass
        out('roots', len(roots))
        out('tcp', tryf(lambda: socket.create_connection(('127.0.0.1', port), timeout=3)))
        u = socket.socket(socket.AF_UNIX)
        out('unix', tryf(lambda: u.connect('\0warden-' + t)))
    "#;
    let mine = probe_args(&a, search, &[h1, h2, &port]).await;
    assert!(
        get(&mine, "files").contains(&format!("/scratch/secret-{tok}")),
        "{mine:?}"
    );
    assert!(
        get(&mine, "files").contains(&format!("/dev/shm/shm-{tok}")),
        "{mine:?}"
    );
    assert!(!get(&mine, "procs").is_empty(), "{mine:?}");
    assert_ne!(get(&mine, "roots"), "0", "{mine:?}");
    assert_eq!(get(&mine, "tcp"), "OK", "{mine:?}");
    assert_eq!(get(&mine, "unix"), "OK", "{mine:?}");

    let theirs = probe_args(&b, search, &[h1, h2, &port]).await;
    assert_eq!(get(&theirs, "files"), "", "B found A's files: {theirs:?}");
    assert_eq!(
        get(&theirs, "procs"),
        "",
        "B sees A's processes: {theirs:?}"
    );
    assert_eq!(get(&theirs, "roots"), "0", "{theirs:?}");
    assert_eq!(get(&theirs, "tcp"), "ECONNREFUSED", "{theirs:?}");
    assert_eq!(get(&theirs, "unix"), "ECONNREFUSED", "{theirs:?}");
    let out = b.sh("ls /scratch /dev/shm").await;
    assert!(!text(&out.stdout).contains(&tok));
}

/// The sandbox's 127.0.0.1 is its own: a host listener is unreachable
/// (ECONNREFUSED, not a timeout), while a listener inside on the same port
/// works. No route to metadata endpoints; `lo` is the only interface; a host
/// abstract Unix socket is out of reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_is_loopback_only() {
    use std::os::linux::net::SocketAddrExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Control: the host listener is real.
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    drop(listener.accept().unwrap());
    listener.set_nonblocking(true).unwrap();
    let tok = token();
    let abs =
        std::os::unix::net::SocketAddr::from_abstract_name(format!("warden-host-{tok}")).unwrap();
    let ulistener = std::os::unix::net::UnixListener::bind_addr(&abs).unwrap();
    drop(std::os::unix::net::UnixStream::connect_addr(&abs).expect("host abstract control"));
    drop(ulistener.accept().unwrap());
    ulistener.set_nonblocking(true).unwrap();

    let sb = Sb::default().await;
    let r = probe_args(
        &sb,
        r#"
        port = int(sys.argv[1])
        out('host', tryf(lambda: socket.create_connection(('127.0.0.1', port), timeout=3)))
        s = socket.socket(); s.bind(('127.0.0.1', port)); s.listen()
        out('own', tryf(lambda: socket.create_connection(('127.0.0.1', port), timeout=3)))
        out('meta4', tryf(lambda: socket.create_connection(('169.254.169.254', 80), timeout=3)))
        out('meta6', tryf(lambda: socket.create_connection(('fd00:ec2::254', 80), timeout=3)))
        out('lan', tryf(lambda: socket.create_connection(('10.0.0.1', 80), timeout=3)))
        out('ifaces', ','.join(sorted(n for _, n in socket.if_nameindex())))
        lines = open('/proc/net/dev').read().splitlines()[2:]
        out('netdev', ','.join(l.split(':')[0].strip() for l in lines))
        out('sysnet', tryf(lambda: os.listdir('/sys/class/net')))
        u = socket.socket(socket.AF_UNIX)
        out('abstract', tryf(lambda: u.connect('\0warden-host-' + sys.argv[2])))
        "#,
        &[&port.to_string(), &tok],
    )
    .await;
    assert_eq!(get(&r, "host"), "ECONNREFUSED", "{r:?}");
    assert_eq!(
        get(&r, "own"),
        "OK",
        "control: loopback inside works: {r:?}"
    );
    assert_eq!(get(&r, "meta4"), "ENETUNREACH", "{r:?}");
    assert_eq!(get(&r, "meta6"), "ENETUNREACH", "{r:?}");
    assert_eq!(get(&r, "lan"), "ENETUNREACH", "{r:?}");
    assert_eq!(get(&r, "ifaces"), "lo", "{r:?}");
    assert_eq!(get(&r, "netdev"), "lo", "{r:?}");
    assert_eq!(get(&r, "sysnet"), "ENOENT", "{r:?}");
    assert_eq!(get(&r, "abstract"), "ECONNREFUSED", "{r:?}");
    // Nothing reached the host's listeners.
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    assert_eq!(
        ulistener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    // Control: the host has more than loopback.
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert!(host.lines().skip(2).count() > 1, "host has only lo?");
}

/// The sandbox's cgroup namespace should be rooted at its own cgroups, so
/// `/proc/self/cgroup` says `/` for every hierarchy. It is created by the
/// clone *before* the host moves the child into its cgroups, so the paths
/// leak the host's cgroup layout (`/warden/slot-N`, and for the memory
/// controller the launcher's own cgroup as `/../../...`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_namespace_hides_host_cgroup_paths() {
    let sb = Sb::default().await;
    let cg = sb.ok("cat /proc/self/cgroup").await;
    for line in cg.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert_eq!(
            path, "/",
            "host cgroup path visible in the sandbox: {line:?}\n{cg}"
        );
    }
}

// ===========================================================================
// Layer: filesystem (mount namespace, read-only binds, Landlock, non-dumpable init)
// ===========================================================================

/// The host's secrets are simply not in the sandbox's tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_secrets_are_absent() {
    // Control: the host has them.
    assert!(Path::new("/etc/shadow").is_file());
    assert!(
        std::fs::read_dir("/root").unwrap().count() > 0,
        "host /root is empty"
    );
    let host_users: BTreeSet<String> = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            out('shadow', tryf(lambda: open('/etc/shadow').read()))
            out('gshadow', tryf(lambda: open('/etc/gshadow').read()))
            out('sudoers', tryf(lambda: open('/etc/sudoers').read()))
            out('ssh', tryf(lambda: os.listdir('/etc/ssh')))
            try:
                out('root', len(os.listdir('/root')))
            except OSError as e:
                out('root', ename(e.errno))
            out('users', ','.join(sorted(l.split(':')[0] for l in open('/etc/passwd'))))
            out('proc1root', tryf(lambda: os.listdir('/proc/1/root/')))
            out('run', len(os.listdir('/run')))
            out('var', tryf(lambda: os.listdir('/var')))
            "#,
        )
        .await;
        for f in ["shadow", "gshadow", "sudoers", "ssh"] {
            assert_eq!(get(&r, f), "ENOENT", "{user:?}: {r:?}");
        }
        let want_root = if user == SandboxUser::Root {
            "0"
        } else {
            "EACCES"
        };
        assert_eq!(get(&r, "root"), want_root, "{user:?}: {r:?}");
        assert_eq!(get(&r, "users"), "nobody,root,sandbox", "{user:?}: {r:?}");
        assert_eq!(get(&r, "proc1root"), "EACCES", "{user:?}: {r:?}");
        // No host sockets (an API socket under /run or /var/run) to talk to.
        assert_eq!(get(&r, "run"), "0", "{user:?}: {r:?}");
        assert_eq!(get(&r, "var"), "ENOENT", "{user:?}: {r:?}");
        assert!(
            host_users.len() > 3,
            "control: host /etc/passwd has more accounts"
        );
        assert!(
            std::fs::read_dir("/run").unwrap().count() > 0,
            "control: host /run"
        );
    }
}

/// PID 1 (the init, which holds the control channel) cannot be traced,
/// read or have its descriptors stolen, whichever user the sandbox runs as.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_process_is_opaque() {
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            for k in ['mem', 'environ', 'maps', 'auxv', 'exe', 'fd/0', 'fd/3', 'cwd/', 'root/etc/passwd']:
                out('open_' + k, tryf(lambda: open('/proc/1/' + k, 'rb').read(1)))
            out('readlink_exe', tryf(lambda: os.readlink('/proc/1/exe')))
            out('readlink_fd3', tryf(lambda: os.readlink('/proc/1/fd/3')))
            out('readlink_root', tryf(lambda: os.readlink('/proc/1/root')))
            out('list_fd', tryf(lambda: os.listdir('/proc/1/fd')))
            out('write_mem', tryf(lambda: os.open('/proc/1/mem', os.O_RDWR)))
            out('ptrace_attach', sc(101, 16, 1, 0, 0))
            out('ptrace_seize', sc(101, 0x4206, 1, 0, 0))
            out('vm_readv', vm(310, 1, 0x400000))
            pidfd = libc.syscall(ctypes.c_long(434), ctypes.c_long(1), ctypes.c_long(0))
            out('pidfd_open', 'OK' if pidfd >= 0 else 'ERR')
            out('pidfd_getfd', sc(438, pidfd, 3, 0))
            # Control: our own /proc entries are readable.
            out('own_environ', tryf(lambda: open('/proc/self/environ', 'rb').read(1)))
            out('own_mem', tryf(lambda: open('/proc/self/mem', 'rb')))
            "#,
        )
        .await;
        for k in [
            "open_mem",
            "open_environ",
            "open_maps",
            "open_auxv",
            "open_exe",
            "open_fd/0",
            "open_fd/3",
            "open_cwd/",
            "open_root/etc/passwd",
            "readlink_exe",
            "readlink_fd3",
            "readlink_root",
            "write_mem",
        ] {
            assert_eq!(get(&r, k), "EACCES", "{user:?} {k}: {r:?}");
        }
        // The sandbox user cannot even list the init's descriptors. Root of
        // the sandbox owns the (non-dumpable) init's /proc entries, so it
        // sees the fd *numbers*, but none of them can be followed (above).
        let list = if user == SandboxUser::Root {
            "OK"
        } else {
            "EACCES"
        };
        assert_eq!(get(&r, "list_fd"), list, "{user:?}: {r:?}");
        for k in ["ptrace_attach", "ptrace_seize", "vm_readv", "pidfd_getfd"] {
            assert_eq!(get(&r, k), "EPERM", "{user:?} {k}: {r:?}");
        }
        assert_eq!(get(&r, "pidfd_open"), "OK", "{r:?}");
        assert_eq!(get(&r, "own_environ"), "OK", "{r:?}");
        assert_eq!(get(&r, "own_mem"), "OK", "{r:?}");
    }
}

/// CVE-2019-5736 style: overwrite the binary behind `/proc/1/exe` (the
/// init, a host file) or `/proc/<pid>/exe` of a running command (a host
/// `/usr` file). Every open for writing fails and the host files are
/// byte-for-byte unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exe_overwrite_is_refused() {
    let init = init_bin().canonicalize().unwrap();
    let dash = Path::new("/usr/bin/dash");
    let before = (sha256(&init), sha256(dash));
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe_args(
            &sb,
            r#"
            for p in ['/proc/1/exe', '/proc/self/exe', '/usr/bin/dash']:
                out(p, tryf(lambda: os.open(p, os.O_WRONLY)))
            out('opath_exe', tryf(lambda: os.open('/proc/1/exe', os.O_PATH)))
            q = subprocess.Popen(['/bin/sh', '-c', 'sleep 5'])
            time.sleep(0.1)
            out('sibling_exe', tryf(lambda: os.open(f'/proc/{q.pid}/exe', os.O_WRONLY | os.O_TRUNC)))
            q.kill()
            out('init_path', tryf(lambda: os.stat(sys.argv[1])))
            "#,
            &[init.to_str().unwrap()],
        )
        .await;
        assert_eq!(get(&r, "/proc/1/exe"), "EACCES", "{user:?}: {r:?}");
        assert_eq!(get(&r, "opath_exe"), "EACCES", "{user:?}: {r:?}");
        // The commands' own binaries come from the read-only host /usr.
        for k in ["/proc/self/exe", "/usr/bin/dash", "sibling_exe"] {
            assert!(
                ["EACCES", "EROFS", "ETXTBSY"].contains(&get(&r, k)),
                "{user:?} {k}: {r:?}"
            );
        }
        assert_eq!(
            get(&r, "init_path"),
            "ENOENT",
            "the init binary is visible: {r:?}"
        );
    }
    assert_eq!(before, (sha256(&init), sha256(dash)), "host binary changed");
}

/// Nothing outside the writable tmpfs mounts can be created or changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_directories_are_read_only() {
    let tok = token();
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe_args(
            &sb,
            r#"
            t = sys.argv[1]
            for d in ['/', '/usr/', '/usr/bin/', '/bin/', '/etc/', '/dev/', '/sys/', '/input/', '/run/', '/home/', '/root/']:
                out('new' + d, tryf(lambda: os.close(os.open(d + 'pwned-' + t, os.O_CREAT | os.O_WRONLY, 0o644))))
            out('mkdir_sys', tryf(lambda: os.mkdir('/sys/fs')))
            out('passwd', tryf(lambda: os.open('/etc/passwd', os.O_WRONLY)))
            out('rename_etc', tryf(lambda: os.rename('/etc/hosts', '/etc/hosts2')))
            out('chmod_root', tryf(lambda: os.chmod('/', 0o777)))
            for d in ['/scratch/', '/tmp/', '/output/', '/dev/shm/']:
                out('ok' + d, tryf(lambda: os.close(os.open(d + 'ok', os.O_CREAT | os.O_WRONLY, 0o644))))
            "#,
            &[&tok],
        )
        .await;
        for d in [
            "/",
            "/usr/",
            "/usr/bin/",
            "/bin/",
            "/etc/",
            "/dev/",
            "/sys/",
            "/input/",
            "/run/",
            "/home/",
        ] {
            assert_eq!(get(&r, &format!("new{d}")), "EROFS", "{user:?} {d}: {r:?}");
        }
        // /root is 0700: the sandbox user is stopped at the lookup already.
        let want = if user == SandboxUser::Root {
            "EROFS"
        } else {
            "EACCES"
        };
        assert_eq!(get(&r, "new/root/"), want, "{user:?}: {r:?}");
        assert_eq!(get(&r, "mkdir_sys"), "EROFS", "{user:?}: {r:?}");
        assert!(
            ["EROFS", "EACCES"].contains(&get(&r, "passwd")),
            "{user:?}: {r:?}"
        );
        assert_eq!(get(&r, "rename_etc"), "EROFS", "{user:?}: {r:?}");
        assert!(
            ["EROFS", "EPERM"].contains(&get(&r, "chmod_root")),
            "{user:?}: {r:?}"
        );
        for d in ["/scratch/", "/tmp/", "/output/", "/dev/shm/"] {
            assert_eq!(
                get(&r, &format!("ok{d}")),
                "OK",
                "control {user:?} {d}: {r:?}"
            );
        }
    }
    // The host's /usr did not grow a file.
    assert!(!Path::new(&format!("/usr/pwned-{tok}")).exists());
    assert!(!Path::new(&format!("/usr/bin/pwned-{tok}")).exists());
}

/// `/input` is a read-only bind even where the host's permissions would let
/// anyone write (mode 0777 directory, 0666 file), and a symlink planted in
/// the input resolves inside the sandbox, not on the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_is_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let input = tempfile::tempdir().unwrap();
    std::fs::set_permissions(input.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = input.path().join("data.txt");
    std::fs::write(&file, "original").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", input.path().join("shadow-link")).unwrap();
    for user in USERS {
        let sb = Sb::start(spec(|s| {
            s.user = user;
            s.input_dir = Some(input.path().to_string_lossy().into_owned());
        }))
        .await;
        let r = probe(
            &sb,
            r#"
            out('read', open('/input/data.txt').read())
            out('write', tryf(lambda: os.open('/input/data.txt', os.O_WRONLY)))
            out('create', tryf(lambda: os.open('/input/new', os.O_CREAT | os.O_WRONLY, 0o644)))
            out('unlink', tryf(lambda: os.unlink('/input/data.txt')))
            out('rename', tryf(lambda: os.rename('/input/data.txt', '/input/moved')))
            out('chmod', tryf(lambda: os.chmod('/input/data.txt', 0o600)))
            out('utime', tryf(lambda: os.utime('/input/data.txt', (0, 0))))
            out('link_out', tryf(lambda: os.link('/input/data.txt', '/scratch/hard')))
            out('shadow_link', tryf(lambda: open('/input/shadow-link').read()))
            "#,
        )
        .await;
        assert_eq!(get(&r, "read"), "original", "control: {r:?}");
        for k in ["write", "create", "unlink", "rename", "chmod", "utime"] {
            assert_eq!(get(&r, k), "EROFS", "{user:?} {k}: {r:?}");
        }
        assert_eq!(get(&r, "link_out"), "EXDEV", "{user:?}: {r:?}");
        // The sandbox's /etc has no shadow: the link cannot reach the host's.
        assert_eq!(get(&r, "shadow_link"), "ENOENT", "{user:?}: {r:?}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original");
    let names: BTreeSet<String> = std::fs::read_dir(input.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["data.txt", "shadow-link"].map(String::from).into());
}

/// Kernel knobs in /proc/sys, sysrq, cgroup v1 release_agent (CVE-2022-0492)
/// and the hostname are out of reach, even for the sandbox's root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_knobs_are_read_only() {
    let host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_core = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert!(
        Path::new("/sys/fs/cgroup").is_dir(),
        "control: host has cgroupfs"
    );
    let host_sysrq = Path::new("/proc/sysrq-trigger").exists();
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            for p in ['/proc/sys/kernel/hostname', '/proc/sys/kernel/core_pattern',
                      '/proc/sys/kernel/modprobe', '/proc/sys/vm/drop_caches',
                      '/proc/sysrq-trigger', '/proc/sys/fs/binfmt_misc/register',
                      '/proc/self/oom_score_adj']:
                def w():
                    with open(p, 'w') as f:
                        f.write('|/tmp/pwn\n')
                out(p, tryf(w))
            out('sethostname', 'OK' if libc.sethostname(b'pwned', 5) == 0 else ename(ctypes.get_errno()))
            out('hostname', open('/proc/sys/kernel/hostname').read().strip())
            out('sys', len(os.listdir('/sys')))
            out('cgroupfs', tryf(lambda: os.listdir('/sys/fs/cgroup')))
            out('release_agent', tryf(lambda: open('/sys/fs/cgroup/memory/release_agent', 'w')))
            out('mount_cgroup', sc(165, b'cgroup', b'/tmp', b'cgroup', 0, b'memory'))
            out('mount_sysfs', sc(165, b'sysfs', b'/tmp', b'sysfs', 0, 0))
            out('mount_proc', sc(165, b'proc', b'/tmp', b'proc', 0, 0))
            "#,
        )
        .await;
        for p in [
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/core_pattern",
            "/proc/sys/kernel/modprobe",
            "/proc/sys/vm/drop_caches",
        ] {
            // modprobe only exists on kernels with module support.
            let want = if Path::new(p).exists() {
                "EROFS"
            } else {
                "ENOENT"
            };
            assert_eq!(get(&r, p), want, "{user:?} {p}: {r:?}");
        }
        // binfmt_misc is not mounted in the sandbox's /proc; sysrq-trigger
        // does not exist on every kernel (this one has none).
        assert_eq!(
            get(&r, "/proc/sys/fs/binfmt_misc/register"),
            "ENOENT",
            "{r:?}"
        );
        let sysrq = get(&r, "/proc/sysrq-trigger");
        if host_sysrq {
            assert!(["EROFS", "EACCES"].contains(&sysrq), "{user:?}: {r:?}");
        } else {
            assert_eq!(sysrq, "ENOENT", "{r:?}");
        }
        // Landlock: /proc is not among the writable paths.
        assert_eq!(
            get(&r, "/proc/self/oom_score_adj"),
            "EACCES",
            "{user:?}: {r:?}"
        );
        assert_eq!(get(&r, "sethostname"), "EPERM", "{user:?}: {r:?}");
        assert_eq!(get(&r, "hostname"), "sandbox", "{r:?}");
        assert_eq!(get(&r, "sys"), "0", "{r:?}");
        assert_eq!(get(&r, "cgroupfs"), "ENOENT", "{r:?}");
        assert_eq!(get(&r, "release_agent"), "ENOENT", "{r:?}");
        for m in ["mount_cgroup", "mount_sysfs", "mount_proc"] {
            assert_eq!(get(&r, m), "EPERM", "{user:?} {m}: {r:?}");
        }
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_hostname
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        host_core
    );
}

/// Host devices are not in the sandbox's /dev, and cannot be made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_devices_are_absent() {
    // Control: the host has the block device and kvm.
    let vda = std::fs::metadata("/dev/vda").expect("host /dev/vda");
    assert!(vda.file_type().is_block_device());
    assert!(Path::new("/dev/kvm").exists());
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            import stat
            for d in ['kvm', 'vda', 'mem', 'kmem', 'port', 'sda', 'nvme0n1', 'loop0', 'fuse', 'net/tun', 'console', 'tty0', 'vsock', 'vhost-vsock']:
                out(d, tryf(lambda: os.close(os.open('/dev/' + d, os.O_RDWR))))
            out('mknod_blk', tryf(lambda: os.mknod('/tmp/vda', stat.S_IFBLK | 0o600, os.makedev(254, 0))))
            out('mknod_chr', tryf(lambda: os.mknod('/tmp/mem', stat.S_IFCHR | 0o600, os.makedev(1, 1))))
            out('tty', tryf(lambda: os.open('/dev/tty', os.O_RDWR)))
            out('null', tryf(lambda: os.close(os.open('/dev/null', os.O_RDWR))))
            out('urandom', len(open('/dev/urandom', 'rb').read(16)))
            "#,
        )
        .await;
        for d in [
            "kvm",
            "vda",
            "mem",
            "kmem",
            "port",
            "sda",
            "nvme0n1",
            "loop0",
            "fuse",
            "net/tun",
            "console",
            "tty0",
            "vsock",
            "vhost-vsock",
        ] {
            assert_eq!(get(&r, d), "ENOENT", "{user:?} /dev/{d}: {r:?}");
        }
        assert_eq!(get(&r, "mknod_blk"), "EPERM", "{user:?}: {r:?}");
        assert_eq!(get(&r, "mknod_chr"), "EPERM", "{user:?}: {r:?}");
        // No controlling terminal (every command runs in its own session).
        assert_eq!(get(&r, "tty"), "ENXIO", "{r:?}");
        assert_eq!(get(&r, "null"), "OK", "control: {r:?}");
        assert_eq!(get(&r, "urandom"), "16", "control: {r:?}");
    }
}

/// setuid-root binaries run without privilege. glibc ignores `LD_DEBUG` in
/// a privileged (AT_SECURE) exec: its debug output proves the kernel gave
/// `su` no privilege. Control: on the host, as an unprivileged user, the
/// same `su` does run privileged and prints nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setuid_binaries_gain_nothing() {
    let host = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["env", "LD_DEBUG=libs", "/usr/bin/su", "--version"])
        .output()
        .expect("setpriv");
    assert!(host.status.success(), "{host:?}");
    assert!(
        !text(&host.stderr).contains("find library"),
        "control: host su should be a secure exec"
    );
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        for bin in ["/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount"] {
            assert_eq!(sb.ok(&format!("stat -c %a {bin}")).await, "4755\n", "{bin}");
            let out = sb.sh(&format!("LD_DEBUG=libs {bin} --version")).await;
            assert!(
                text(&out.stderr).contains("find library"),
                "{user:?} {bin} ran as a secure (privileged) exec: {}",
                text(&out.stderr)
            );
        }
        if user == SandboxUser::Sandbox {
            let out = sb.sh("su root -c id </dev/null").await;
            assert_ne!(out.status.code, Some(0), "{out:?}");
            assert!(!text(&out.stdout).contains("uid=0"));
        }
        let out = sb
            .sh("newgrp root </dev/null; mount -t tmpfs none /tmp")
            .await;
        assert_ne!(out.status.code, Some(0), "{out:?}");
        let r = probe(
            &sb,
            r#"
            out('setuid', tryf(lambda: os.setuid(0)))
            out('setresuid', tryf(lambda: os.setresuid(0, 0, 0)))
            out('setgid', tryf(lambda: os.setgid(0)))
            out('setgroups', tryf(lambda: os.setgroups([0])))
            st = dict(l.split(':\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\t' in l)
            for k in ['NoNewPrivs', 'CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'Seccomp']:
                out(k, st[k].strip())
            "#,
        )
        .await;
        // Root of the sandbox "becomes" root trivially; nobody gets more.
        if user == SandboxUser::Sandbox {
            for k in ["setuid", "setresuid", "setgid"] {
                assert_eq!(get(&r, k), "EPERM", "{k}: {r:?}");
            }
        }
        assert_eq!(get(&r, "setgroups"), "EPERM", "{user:?}: {r:?}");
        assert_eq!(get(&r, "NoNewPrivs"), "1");
        for k in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
            assert_eq!(get(&r, k), "0000000000000000", "{user:?} {k}");
        }
        assert_eq!(get(&r, "Seccomp"), "2");
    }
}

/// A command starts with stdin, stdout and stderr only: nothing of the
/// host's or the init's descriptors leaks in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descriptors_leak_into_commands() {
    // The directory fd of the listing itself is closed again by the time
    // the links are read.
    let lister = "import os\n\
                  def link(f):\n    try:\n        return os.readlink('/proc/self/fd/' + f)\n    except OSError:\n        return 'closed'\n\
                  fds = sorted(os.listdir('/proc/self/fd'), key=int)\n\
                  print(' '.join(f + '>' + link(f) for f in fds))";
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let out = sb
            .client
            .exec_collect(ExecRequest::argv(["/usr/bin/python3", "-c", lister]))
            .await
            .unwrap();
        let line = text(&out.stdout);
        let fds: Vec<&str> = line.split_whitespace().collect();
        // 0..2 plus the directory fd of the listing itself.
        assert_eq!(fds.len(), 4, "{user:?}: {line}");
        assert_eq!(fds[0], "0>/dev/null", "{line}");
        assert!(fds[1].starts_with("1>pipe:"), "{line}");
        assert!(fds[2].starts_with("2>pipe:"), "{line}");
        assert_eq!(fds[3], "3>closed", "{line}");
        // A shell and a background process see the same.
        let ls = sb.ok("ls /proc/self/fd | tr '\\n' ' '").await;
        assert_eq!(ls.trim(), "0 1 2 3", "{user:?}");
        let pid = sb
            .client
            .spawn(ExecRequest::shell("ls /proc/self/fd > /tmp/bgfds"))
            .await
            .unwrap();
        sb.client.wait(pid).await.unwrap();
        let bg = text(&sb.client.read_file("/tmp/bgfds").await.unwrap());
        assert_eq!(
            bg.split_whitespace().collect::<Vec<_>>(),
            ["0", "1", "2", "3"]
        );
        // Control: the listing does see a descriptor that is open.
        let out = sb
            .ok("exec 7</dev/null; ls /proc/self/fd | tr '\\n' ' '")
            .await;
        assert_eq!(out.trim(), "0 1 2 3 7");
    }
}

// ===========================================================================
// Layer: seccomp (crates/confine/policy/x86_64.json)
// ===========================================================================

/// Kernel attack surface: every call is refused with EPERM inside, while on
/// the host the same calls with the same arguments get past the syscall
/// entry (they succeed or fail with another errno) — so EPERM is the filter.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_refuses_kernel_attack_surface() {
    let body = r#"
        out('keyctl', sc(250, 0, -3, 0))              # KEYCTL_GET_KEYRING_ID session
        out('request_key', sc(249, b'user', b'warden-none', 0, 0))
        out('bpf', sc(321, 9999, 0, 0))               # bad command
        out('perf_event_open', sc(298, 0, 0, -1, -1, 0))
        out('io_uring_setup', sc(425, 1, 0))
        out('userfaultfd', sc(323, 1))                # UFFD_USER_MODE_ONLY
        out('open_by_handle_at', sc(304, -1, 0, 0))
        out('name_to_handle_at', sc(303, -100, b'/', 0, 0, 0))
        out('fanotify_init', sc(300, 0, 0))
        out('syslog', sc(103, 3, 0, 0))               # SYSLOG_ACTION_READ_ALL
    "#;
    let host = host_probe(body);
    let sb = Sb::default().await;
    let inside = probe(&sb, body).await;
    for k in [
        "keyctl",
        "request_key",
        "bpf",
        "perf_event_open",
        "io_uring_setup",
        "userfaultfd",
        "open_by_handle_at",
        "name_to_handle_at",
        "fanotify_init",
        "syslog",
    ] {
        assert_eq!(get(&inside, k), "EPERM", "{k}: {inside:?}");
        assert_ne!(get(&host, k), "EPERM", "control {k} on host: {host:?}");
    }
    // Root of the sandbox fares no better.
    let sb = Sb::start(as_user(SandboxUser::Root)).await;
    let inside = probe(&sb, body).await;
    for k in [
        "keyctl",
        "bpf",
        "perf_event_open",
        "io_uring_setup",
        "userfaultfd",
    ] {
        assert_eq!(get(&inside, k), "EPERM", "root {k}: {inside:?}");
    }
}

/// No new namespaces, no mounts, no root changes; clone3 reports ENOSYS so
/// libc falls back to clone, whose flags the filter can see.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_refuses_namespaces_and_mounts() {
    // Control: the host can create user and network namespaces.
    let st = Command::new("unshare")
        .args(["-U", "-n", "true"])
        .status()
        .unwrap();
    assert!(st.success(), "control: unshare -U -n on the host");
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(
            &sb,
            r#"
            for name, flag in [('user', 0x10000000), ('net', 0x40000000), ('mnt', 0x20000),
                               ('pid', 0x20000000), ('ipc', 0x8000000), ('uts', 0x4000000),
                               ('cgroup', 0x2000000), ('time', 0x80)]:
                out('unshare_' + name, sc(272, flag))
            # clone(CLONE_NEWUSER|CLONE_NEWNS|SIGCHLD): refused before any child exists
            out('clone_newuser', sc(56, 0x10000000 | 0x20000 | 17, 0, 0, 0, 0))
            out('setns', sc(308, os.open('/proc/self/ns/net', os.O_RDONLY), 0))
            out('mount_tmpfs', sc(165, b'none', b'/tmp', b'tmpfs', 0, 0))
            out('bind_usr', sc(165, b'/usr', b'/tmp', 0, 0x1000, 0))
            out('remount_root', sc(165, 0, b'/', 0, 0x20 | 0x1000, 0))  # MS_REMOUNT|MS_BIND rw
            out('umount_usr', sc(166, b'/usr', 2))
            out('pivot_root', sc(155, b'/tmp', b'/tmp'))
            out('chroot', sc(161, b'/tmp'))
            out('fsopen', sc(430, b'tmpfs', 0))
            out('open_tree', sc(428, -100, b'/usr', 1))
            out('mount_setattr', sc(442, -100, b'/', 0, 0, 0))
            out('clone3', sc(435, 0, 0))
            # Control: an ordinary fork still works (clone without namespace bits).
            p = os.fork()
            if p == 0:
                os._exit(7)
            out('fork', os.waitpid(p, 0)[1] >> 8)
            "#,
        )
        .await;
        for k in [
            "unshare_user",
            "unshare_net",
            "unshare_mnt",
            "unshare_pid",
            "unshare_ipc",
            "unshare_uts",
            "unshare_cgroup",
            "unshare_time",
            "clone_newuser",
            "setns",
            "mount_tmpfs",
            "bind_usr",
            "remount_root",
            "umount_usr",
            "pivot_root",
            "chroot",
            "fsopen",
            "open_tree",
            "mount_setattr",
        ] {
            assert_eq!(get(&r, k), "EPERM", "{user:?} {k}: {r:?}");
        }
        assert_eq!(get(&r, "clone3"), "ENOSYS", "{r:?}");
        assert_eq!(get(&r, "fork"), "7", "control: {r:?}");
        let out = sb.sh("unshare -U -r true; unshare -n true").await;
        assert_ne!(out.status.code, Some(0));
        assert!(
            text(&out.stderr).contains("Operation not permitted"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// ptrace, process_vm_readv/writev, kcmp and pidfd_getfd against a sibling
/// process of the same uid (which the kernel alone would allow: same uid,
/// dumpable, no Yama) are refused by the filter.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_refuses_cross_process_access() {
    let body = r#"
        q = subprocess.Popen(['sleep', '10'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.05)
        st = open(f'/proc/{q.pid}/status').read()
        out('same_uid', [l.split()[1] for l in st.splitlines() if l.startswith('Uid:')][0] == str(os.getuid()))
        out('ptrace_attach', sc(101, 16, q.pid, 0, 0))
        out('ptrace_seize', sc(101, 0x4206, q.pid, 0, 0))
        if len(sys.argv) > 1:  # never on the host: it would make the test harness a tracer
            out('ptrace_traceme', sc(101, 0, 0, 0, 0))
        out('vm_readv', vm(310, q.pid, 0x400000))
        out('vm_writev', vm(311, q.pid, 0x400000))
        out('vm_readv_self', vm(310, os.getpid(), SRC_ADDR))
        out('kcmp', sc(312, os.getpid(), q.pid, 0, 0, 0))
        pidfd = libc.syscall(ctypes.c_long(434), ctypes.c_long(q.pid), ctypes.c_long(0))
        out('pidfd_getfd', sc(438, pidfd, 0, 0))
        q.kill()
        q.wait()
    "#;
    let host = host_probe(body);
    assert_eq!(get(&host, "vm_readv_self"), "OK", "control: {host:?}");
    assert_eq!(get(&host, "kcmp"), "OK", "control: {host:?}");
    assert_eq!(get(&host, "pidfd_getfd"), "OK", "control: {host:?}");
    let sb = Sb::default().await;
    let r = probe_args(&sb, body, &["inside"]).await;
    assert_eq!(get(&r, "same_uid"), "True", "{r:?}");
    for k in [
        "ptrace_attach",
        "ptrace_seize",
        "ptrace_traceme",
        "vm_readv",
        "vm_writev",
        "vm_readv_self",
        "kcmp",
        "pidfd_getfd",
    ] {
        assert_eq!(get(&r, k), "EPERM", "{k}: {r:?}");
    }
}

/// TIOCSTI (and TIOCLINUX) are refused by the filter, including the
/// CVE-2019-10063 variant with high bits set. On /dev/null the kernel itself
/// would answer ENOTTY (host control), so EPERM is the filter's; on a pty
/// the host's root really can push input with both request numbers.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_refuses_tiocsti() {
    let body = r#"
        c = ctypes.c_char(b'x')
        m, s = os.openpty()
        n = os.open('/dev/null', os.O_RDWR)
        out('pty', sc(16, s, 0x5412, ctypes.byref(c)))
        out('pty_hi', sc(16, s, 0x100005412, ctypes.byref(c)))
        out('null', sc(16, n, 0x5412, ctypes.byref(c)))
        out('null_hi', sc(16, n, 0x100005412, ctypes.byref(c)))
        out('null_hi2', sc(16, n, 0xdead00005412, ctypes.byref(c)))
        out('tioclinux', sc(16, n, 0x541C, ctypes.byref(c)))
        ws = ctypes.create_string_buffer(8)
        out('winsz', sc(16, s, 0x5413, ws))
    "#;
    let host = host_probe(body);
    assert_eq!(get(&host, "null"), "ENOTTY", "control: {host:?}");
    assert_eq!(get(&host, "null_hi"), "ENOTTY", "control: {host:?}");
    assert_eq!(get(&host, "pty"), "OK", "control: {host:?}");
    assert_eq!(
        get(&host, "pty_hi"),
        "OK",
        "control: kernel truncates the request: {host:?}"
    );
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(&sb, body).await;
        for k in ["pty", "pty_hi", "null", "null_hi", "null_hi2", "tioclinux"] {
            assert_eq!(get(&r, k), "EPERM", "{user:?} {k}: {r:?}");
        }
        assert_eq!(
            get(&r, "winsz"),
            "OK",
            "control: other tty ioctls work: {r:?}"
        );
    }
}

/// Packet, vsock and non-route netlink sockets are refused; the host can
/// create every one of them (control), and ordinary sockets still work.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_refuses_dangerous_sockets() {
    let body = r#"
        for name, fam, typ, proto in [
            ('packet_raw', 17, 3, 0), ('packet_dgram', 17, 2, 0),
            ('vsock_stream', 40, 1, 0), ('vsock_dgram', 40, 2, 0),
            ('nl_audit', 16, 3, 9), ('nl_uevent', 16, 3, 15), ('nl_diag', 16, 3, 4),
            ('nl_generic', 16, 3, 16), ('nl_netfilter', 16, 3, 12),
            ('nl_route', 16, 3, 0), ('inet', 2, 1, 0), ('unix', 1, 1, 0)]:
            out(name, sc(41, fam, typ, proto))
        out('socketpair_vsock', sc(53, 40, 1, 0, ctypes.byref((ctypes.c_int * 2)())))
    "#;
    let host = host_probe(body);
    for k in ["packet_raw", "vsock_stream", "nl_audit", "nl_uevent"] {
        assert_eq!(get(&host, k), "OK", "control {k} on host: {host:?}");
    }
    for user in USERS {
        let sb = Sb::start(as_user(user)).await;
        let r = probe(&sb, body).await;
        for k in [
            "packet_raw",
            "packet_dgram",
            "vsock_stream",
            "vsock_dgram",
            "nl_audit",
            "nl_uevent",
            "nl_diag",
            "nl_generic",
            "nl_netfilter",
            "socketpair_vsock",
        ] {
            assert_eq!(get(&r, k), "EPERM", "{user:?} {k}: {r:?}");
        }
        for k in ["nl_route", "inet", "unix"] {
            assert_eq!(get(&r, k), "OK", "control {k}: {r:?}");
        }
    }
}

/// x32 system calls (which carry AUDIT_ARCH_X86_64 and would dodge every
/// rule) kill the process; personality flags that weaken ASLR are refused.
#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_kills_x32_and_limits_personality() {
    let sb = Sb::default().await;
    let r = probe(
        &sb,
        r#"
        out('addr_no_randomize', sc(135, 0x0040000))
        out('read_implies_exec', sc(135, 0x0400000))
        out('query', sc(135, 0xffffffff))
        out('linux', sc(135, 0))
        "#,
    )
    .await;
    assert_eq!(get(&r, "addr_no_randomize"), "EPERM", "{r:?}");
    assert_eq!(get(&r, "read_implies_exec"), "EPERM", "{r:?}");
    assert_eq!(get(&r, "query"), "OK", "control: {r:?}");
    assert_eq!(get(&r, "linux"), "OK", "control: {r:?}");
    // x32 getpid (0x40000000 | 39).
    let out = py_args(
        &sb,
        "print('before', flush=True)\nsc(0x40000000 | 39)\nprint('after')",
        &[],
    )
    .await;
    assert_eq!(out.status.signal, Some(libc::SIGSYS), "{out:?}");
    assert_eq!(text(&out.stdout), "before\n");
    // Control: the plain x86_64 getpid is fine.
    let out = py_args(&sb, "out('getpid', sc(39))", &[]).await;
    assert_eq!(
        kv(&out.stdout).get("getpid").map(String::as_str),
        Some("OK")
    );
}

// ===========================================================================
// Layer: cgroups and rlimits (resource exhaustion)
// ===========================================================================

/// A fork bomb under a pids limit of 64 hits EAGAIN inside; the host stays
/// responsive meanwhile; the sandbox is controllable afterwards and its
/// destruction is quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_contained() {
    let sb = Sb::start(spec(|s| s.limits.pids = Some(64))).await;
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
    let mut req = ExecRequest::shell("b(){ b|b& }; (b); while :; do :; done");
    req.timeout_ms = Some(3000);
    let pid = sb.client.spawn(req).await.unwrap();
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

/// Allocating 512 MiB under a 64 MiB limit gets the process OOM-killed
/// inside the sandbox; the cgroup counts it; the sandbox survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_oom_killed() {
    let sb = Sb::start(spec(|s| {
        s.limits.memory_bytes = Some(64 << 20);
        s.limits.swap_bytes = Some(0);
    }))
    .await;
    // Control: a modest allocation is fine.
    let out = py_args(&sb, "x = b'\\x01' * (16 << 20)\nout('ok', len(x))", &[]).await;
    assert_eq!(out.status.code, Some(0), "{out:?}");
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
    assert!(st.memory_peak_bytes <= 64 << 20, "{st:?}");
    assert_eq!(sb.ok("echo alive").await, "alive\n");
}

/// A CPU burner in two processes gets no more than its quota (0.5 CPU).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_burn_is_throttled() {
    let sb = Sb::start(spec(|s| s.limits.cpu_millicores = Some(500))).await;
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_hits_enospc() {
    let sb = Sb::start(spec(|s| s.limits.disk_bytes = 8 << 20)).await;
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_limit_is_enforced() {
    let sb = Sb::start(spec(|s| s.limits.disk_bytes = 8 << 20)).await;
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
    let out = sb
        .sh("dd if=/dev/zero of=/output/one bs=1M count=16 2>/dev/null; echo rc=$?; stat -c %s /output/one")
        .await;
    assert_eq!(
        text(&out.stdout),
        format!("rc={}\n{}\n", 128 + libc::SIGXFSZ, 8 << 20)
    );
}

/// Creating empty files stops with ENOSPC at the tmpfs inode cap, far
/// below what would hurt the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inode_exhaustion_is_capped() {
    let sb = Sb::start(spec(|s| s.limits.disk_bytes = 8 << 20)).await;
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

/// Opening descriptors stops at RLIMIT_NOFILE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_is_capped() {
    let sb = Sb::default().await;
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

/// A double-forked, setsid'd daemon that closed its stdio lives on after
/// its command, but dies with the sandbox. Checked on the host: the process
/// (found by a unique argv) runs under the sandbox's uid range before and
/// is gone after destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_dies_with_its_sandbox() {
    let sb = Sb::default().await;
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

/// Code inside can cripple its own init (same uid: prlimit on PID 1, stop
/// signals are ignored but sent), but the host still destroys the sandbox
/// promptly and takes every process with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crippled_sandbox_is_still_destroyed() {
    let sb = Sb::default().await;
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
    assert_eq!(host_pids_with_cmdline(&["/usr/bin/sleep", &secs]).len(), 1);
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

// ===========================================================================
// Layer: export (warden_runtime::export: strict reads in the sandbox, cap_std on the host)
// ===========================================================================

/// Everything hostile planted in /output is skipped with a reason; nothing
/// lands outside the destination; the plain files next to them are exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_hostile_output() {
    // A disk limit above 10 GiB so the sparse file can be made at all
    // (RLIMIT_FSIZE follows the disk limit; see file_size_limit_is_enforced).
    let sb = Sb::start(spec(|s| s.limits.disk_bytes = 16 << 30)).await;
    let tok = token();
    let r = probe_args(
        &sb,
        r#"
        t = sys.argv[1]
        os.chdir('/output')
        open('good.txt', 'w').write('good ' + t)
        os.mkdir('sub')
        open('sub/inner.txt', 'w').write('inner')
        open('..dots-' + t, 'w').write('dots')
        os.symlink('/etc/passwd', 'passwd-link')
        os.symlink('/', 'root-link')
        os.symlink('../../../../tmp', 'up-link')
        os.symlink('/etc', 'dir-link')
        open('hard-a', 'w').write('shared')
        os.link('hard-a', 'hard-b')
        os.mkfifo('fifo')
        s = socket.socket(socket.AF_UNIX); s.bind('/output/sock')
        with open('sparse', 'wb') as f:
            f.truncate(10 << 30)
        open('..\\..\\..\\escape-' + t, 'w').write('escape')
        open('line\nbreak', 'w').write('nl')
        open(b'\xff\xfe-bad-utf8', 'w').write('bad')
        open('tab\there', 'w').write('tab')
        os.makedirs('/'.join(['deep'] * 40))
        open('/'.join(['deep'] * 40) + '/bottom.txt', 'w').write('bottom')
        out('sparse_size', os.stat('sparse').st_size)
        out('sparse_blocks', os.stat('sparse').st_blocks)
        "#,
        &[&tok],
    )
    .await;
    assert_eq!(get(&r, "sparse_size"), (10u64 << 30).to_string());
    let passwd_before = sha256(Path::new("/etc/passwd"));

    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let report = warden_runtime::export::export(&sb.client, "/output", &dest, 64 << 20)
        .await
        .expect("export");

    // Control: the plain files are exported, byte for byte.
    assert_eq!(
        std::fs::read_to_string(dest.join("good.txt")).unwrap(),
        format!("good {tok}")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/inner.txt")).unwrap(),
        "inner"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join(format!("..dots-{tok}"))).unwrap(),
        "dots"
    );

    let skipped = |name: &str, why: &str| {
        let hit = report
            .skipped
            .iter()
            .find(|s| s.path == format!("/output/{name}"))
            .unwrap_or_else(|| panic!("{name} not in skipped: {:#?}", report.skipped));
        assert!(
            hit.reason.contains(why),
            "{name} skipped for {:?}, expected {why:?}",
            hit.reason
        );
    };
    for l in ["passwd-link", "root-link", "up-link", "dir-link"] {
        skipped(l, "symlink");
    }
    skipped("hard-a", "hard link");
    skipped("hard-b", "hard link");
    skipped("fifo", "special file");
    skipped("sock", "special file");
    skipped("sparse", "export limit");
    skipped(&format!("..\\\\..\\\\..\\\\escape-{tok}"), "path separator");
    skipped("line\\nbreak", "control characters");
    skipped("tab\\there", "control characters");
    skipped("\\xff\\xfe-bad-utf8", "UTF-8");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.reason.contains("nested too deep")),
        "{:#?}",
        report.skipped
    );
    let reported: BTreeSet<&str> = report.files.iter().map(|(p, _)| p.as_str()).collect();
    assert!(reported.contains("good.txt") && reported.contains("sub/inner.txt"));
    assert!(report.bytes < 1 << 20, "{} bytes exported", report.bytes);

    // The host side holds only plain files and directories, all inside dest.
    let mut found = Vec::new();
    let mut stack = vec![dest.clone()];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).unwrap() {
            let ent = ent.unwrap();
            let md = std::fs::symlink_metadata(ent.path()).unwrap();
            let rel = ent
                .path()
                .strip_prefix(&dest)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if md.is_dir() {
                stack.push(ent.path());
            } else {
                assert!(md.is_file(), "{rel} is not a plain file on the host");
                assert_eq!(md.nlink(), 1, "{rel}");
                assert!(md.len() < 1 << 20, "{rel} is {} bytes", md.len());
                found.push(rel);
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        [
            format!("..dots-{tok}"),
            "good.txt".into(),
            "sub/inner.txt".into()
        ],
        "unexpected files on the host"
    );
    // Nothing beside dest in the temp dir, nothing escaped into its parent.
    let beside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["out"], "files written next to the destination");
    for ent in std::fs::read_dir(tmp.path().parent().unwrap())
        .unwrap()
        .flatten()
    {
        assert!(
            !ent.file_name().to_string_lossy().contains(&tok),
            "{:?} escaped the destination",
            ent.path()
        );
    }
    assert_eq!(passwd_before, sha256(Path::new("/etc/passwd")));
}

/// TOCTOU: a process in the sandbox keeps swapping `/output/race` between a
/// regular file and a symlink to the sandbox's /etc/hostname while the host
/// exports repeatedly. Whatever the timing, the export either copies the
/// regular file's content or skips the entry; it never reads through the
/// link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_survives_symlink_swap_race() {
    let sb = Sb::default().await;
    sb.client
        .spawn(ExecRequest::argv([
            "/usr/bin/python3",
            "-c",
            &dedent(
                r#"
                import os
                os.chdir('/output')
                os.symlink('/etc/hostname', 'link')
                while True:
                    open('tmpf', 'w').write('regular')
                    os.rename('tmpf', 'race')
                    os.symlink('/etc/hostname', 'tmpl')
                    os.rename('tmpl', 'race')
                "#,
            ),
        ]))
        .await
        .unwrap();
    // Wait for the swapper to be running.
    for _ in 0..200 {
        if sb.client.stat("/output/race").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut copied, mut as_link) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut i = 0;
    // Until both outcomes were seen a few times: proof the race was live.
    while Instant::now() < deadline && (copied < 3 || as_link < 3) {
        i += 1;
        let dest = tmp.path().join(format!("e{i}"));
        let report = warden_runtime::export::export(&sb.client, "/output", &dest, 1 << 20)
            .await
            .expect("export");
        let race = dest.join("race");
        if let Ok(md) = std::fs::symlink_metadata(&race) {
            assert!(md.is_file(), "race exported as {md:?}");
            let c = std::fs::read_to_string(&race).unwrap();
            assert_eq!(c, "regular", "export read through the symlink");
            copied += 1;
        }
        for s in report.skipped.iter().filter(|s| s.path == "/output/race") {
            let r = s.reason.to_lowercase();
            // Listed as a symlink, or listed as a file and found to be a
            // symlink when opened (openat2 RESOLVE_NO_SYMLINKS: ELOOP).
            if r.contains("symlink") || r.contains("levels of symbolic links") {
                as_link += 1;
            } else {
                // Replaced between readdir and lstat/open: the old inode
                // (0 links) or nothing at all. Skipping it is safe.
                assert!(
                    r.contains("0 links") || r.contains("no such file"),
                    "race skipped for {:?}",
                    s.reason
                );
            }
        }
        for name in ["link", "tmpl"] {
            assert!(!dest.join(name).exists(), "symlink {name} exported");
        }
    }
    assert!(
        copied > 0 && as_link > 0,
        "race never observed both ways: {copied} copied, {as_link} refused in {i} exports"
    );
}

//! `warden run --isolation gvisor` end to end, and a probe only gVisor
//! passes. Each test has its own state directory and cgroup parent, checks
//! that nothing of it is left when its sandboxes are gone, and removes
//! whatever is left even when an assertion fails first (`Env`'s Drop).
//!
//! The protocol-level scenarios (exec, sessions, files, watches, limits) and
//! the attack suite run on both tiers in `behaviour.rs` and `attacks/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn warden() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

struct Env {
    state: PathBuf,
    cgroup_parent: String,
}

impl Env {
    fn new(name: &str) -> Env {
        let env = Env {
            state: PathBuf::from(format!("/run/warden-test-gv-{name}")),
            cgroup_parent: format!("warden-test-gv-{name}"),
        };
        env.clean();
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(warden());
        c.arg("run")
            .args(args)
            .env("WARDEN_STATE_DIR", &self.state)
            .env("WARDEN_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(Stdio::null());
        c
    }

    fn gv(&self, args: &[&str]) -> Output {
        let mut all = vec!["--isolation", "gvisor"];
        all.extend_from_slice(args);
        self.cmd(&all).output().expect("run warden")
    }

    fn runsc_root(&self) -> PathBuf {
        self.state.join("gvisor/runsc")
    }

    /// Everything a finished run could have left: runsc processes using our
    /// state, runsc container state, bundles, and cgroups under our parent.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let needle = self.state.to_string_lossy().into_owned();
        for ent in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(cmd) = std::fs::read(ent.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("runsc") && cmd.contains(&needle) {
                left.push(format!(
                    "process {}: {cmd}",
                    ent.file_name().to_string_lossy()
                ));
            }
        }
        for dir in [self.runsc_root(), self.state.join("gvisor/bundles")] {
            for ent in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                left.push(format!("{}", ent.path().display()));
            }
        }
        for ctl in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let parent = ctl.path().join(&self.cgroup_parent);
            for ent in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                if ent.path().is_dir() {
                    left.push(format!("cgroup {}", ent.path().display()));
                }
            }
        }
        left
    }

    fn assert_clean(&self) {
        let left = self.leftovers();
        assert!(left.is_empty(), "left behind: {left:#?}");
    }

    fn clean(&self) {
        common::remove_private_runtime(&self.state, &self.cgroup_parent);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.clean();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn exit_codes_streams_env_workdir_and_user() {
    let env = Env::new("basic");
    let o = env.gv(&["--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(code(&o), 7, "{o:?}");
    assert_eq!(text(&o.stdout), "out\n");
    assert!(text(&o.stderr).contains("err"), "{o:?}");

    let o = env.gv(&[
        "-e",
        "FOO=bar baz",
        "--workdir",
        "/tmp",
        "--",
        "sh",
        "-c",
        "echo \"$FOO\"; pwd; id -u; hostname",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(text(&o.stdout), "bar baz\n/tmp\n1000\nsandbox\n");

    let o = env.gv(&[
        "--user",
        "root",
        "--",
        "sh",
        "-c",
        "id -u; grep CapEff /proc/self/status",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(text(&o.stdout), "0\nCapEff:\t0000000000000000\n");

    let o = env.gv(&["--", "no-such-command"]);
    assert_eq!(code(&o), 127, "{o:?}");
    env.assert_clean();
}

#[test]
fn input_is_read_only_and_output_is_exported() {
    let env = Env::new("files");
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("a.txt"), "hello\n").unwrap();
    let o = env.gv(&[
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "cat /input/a.txt; if echo x > /input/b 2>/dev/null; then echo WROTE; fi; \
         mkdir /output/d && echo result > /output/d/r.txt",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(text(&o.stdout), "hello\n");
    assert!(!input.join("b").exists());
    assert_eq!(
        std::fs::read_to_string(output.join("d/r.txt")).unwrap(),
        "result\n"
    );
    env.assert_clean();
}

#[test]
fn output_streams_before_the_command_ends() {
    let env = Env::new("stream");
    let mut child = env
        .cmd(&[
            "--isolation",
            "gvisor",
            "--",
            "sh",
            "-c",
            "echo first; sleep 2; echo second",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let first = t.elapsed();
    assert_eq!(line, "first\n");
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let second = t.elapsed();
    assert_eq!(line, "second\n");
    assert!(child.wait().unwrap().success());
    assert!(
        first + Duration::from_millis(1500) < second,
        "first line at {first:?} was not streamed before the sleep ended ({second:?})"
    );
    env.assert_clean();
}

#[test]
fn timeout_and_memory_limit() {
    let env = Env::new("limits");
    let t = Instant::now();
    let o = env.gv(&["--timeout", "1s", "--", "sleep", "30"]);
    assert_eq!(code(&o), 124, "{o:?}");
    assert!(t.elapsed() < Duration::from_secs(15));

    let o = env.gv(&[
        "--memory",
        "64M",
        "--",
        "python3",
        "-c",
        "a = bytearray(300 << 20); print('allocated', len(a))",
    ]);
    assert_ne!(code(&o), 0, "{o:?}");
    assert!(!text(&o.stdout).contains("allocated"), "{o:?}");
    env.assert_clean();
}

/// What only a user-space kernel shows: gVisor's kernel version and boot
/// messages, not the host's; the native tier, as a control, shows the host's.
#[test]
fn the_kernel_seen_inside_is_gvisors() {
    let env = Env::new("kernel");
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let host_release = host_release.trim();
    let probe = "uname -r; cat /proc/version; dmesg | head -1";
    let o = env.gv(&["--", "sh", "-c", probe]);
    assert_eq!(code(&o), 0, "{o:?}");
    let inside = text(&o.stdout);
    assert!(
        !inside.contains(host_release),
        "host kernel visible: {inside}"
    );
    assert!(inside.contains("Starting gVisor"), "{inside}");

    let o = env
        .cmd(&[
            "--isolation",
            "native",
            "--",
            "sh",
            "-c",
            "uname -r; cat /proc/version",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    let native = text(&o.stdout);
    assert!(native.starts_with(host_release), "{native}");
    assert!(native.contains(host_release));
    env.assert_clean();
}

/// Commands load the host's locales from one archive (one file mapped,
/// instead of a dozen opened one by one through the Sentry), the same
/// locales the host has, read-only. The native tier, which reads the
/// host's directory, is the control.
#[test]
fn locales_come_from_one_read_only_archive() {
    let host = Path::new("/usr/lib/locale");
    let compiled = std::fs::read_dir(host)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("LC_CTYPE").is_file());
    if !compiled
        || !Path::new("/usr/bin/localedef").exists()
        || host.join("locale-archive").exists()
    {
        eprintln!(
            "skipped: no compiled locale directories, no localedef, or the host has an archive"
        );
        return;
    }
    let env = Env::new("locale");
    let probe = "locale -a; grep -c locale-archive /proc/self/maps; \
                 python3 -c \"import locale; print(locale.setlocale(locale.LC_ALL, ''))\"; \
                 touch /usr/lib/locale/x 2>/dev/null && echo wrote; touch /tmp/x && echo control";
    let o = env.gv(&["--user", "root", "--", "sh", "-c", probe]);
    assert_eq!(code(&o), 0, "{o:?}");
    let on_host = Command::new("locale").arg("-a").output().unwrap();
    let want = format!("{}1\nC.UTF-8\ncontrol\n", text(&on_host.stdout));
    assert_eq!(text(&o.stdout), want, "{o:?}");

    let o = env
        .cmd(&["--", "sh", "-c", "grep -c locale-archive /proc/self/maps"])
        .output()
        .unwrap();
    assert_eq!(
        text(&o.stdout),
        "0\n",
        "native reads the host's directory: {o:?}"
    );
    env.assert_clean();
}

#[test]
fn unavailable_tier_and_unsupported_options_are_clear_errors() {
    let env = Env::new("errors");
    let o = env
        .cmd(&["--isolation", "gvisor", "--", "true"])
        .env("WARDEN_RUNSC", "/nonexistent/runsc")
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        text(&o.stderr).contains("the gvisor isolation tier is unavailable: runsc not found"),
        "{o:?}"
    );
    assert_eq!(text(&o.stderr).lines().count(), 1, "{o:?}");

    let o = env
        .cmd(&["--isolation", "gvisor", "--", "true"])
        .env("WARDEN_GVISOR_PLATFORM", "no-such-platform")
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{o:?}");
    assert!(
        text(&o.stderr).contains("no gVisor platform works"),
        "{o:?}"
    );
    env.assert_clean();
}

/// An allowlist under gVisor: the proxy answers on the sandbox's
/// 127.0.0.1:3128 (here refusing a name that does not resolve, which it
/// reports), and an address outside is unreachable without it.
#[test]
fn an_allowlist_reaches_the_proxy_and_nothing_else() {
    let env = Env::new("egress");
    let o = env.gv(&[
        "--allow-host",
        "nowhere.test",
        "--",
        "sh",
        "-c",
        "curl -s -m 10 -o /dev/null -w '%{http_code}\\n' http://nowhere.test/; \
         curl -s -m 5 --noproxy '*' http://10.0.0.1/; echo direct=$?",
    ]);
    let out = text(&o.stdout);
    assert_eq!(out, "502\ndirect=7\n", "{o:?}");
    assert!(
        text(&o.stderr).contains("egress failed: GET nowhere.test:80 (cannot resolve"),
        "{o:?}"
    );
    env.assert_clean();
}

#[test]
fn a_crashed_owner_is_reaped_by_the_next_runtime() {
    let env = Env::new("reap");
    // A `warden run` killed outright leaves its sandbox to the next start.
    let mut child = env
        .cmd(&["--isolation", "gvisor", "--", "sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.leftovers().iter().all(|l| !l.contains("bundles/")) {
        assert!(Instant::now() < deadline, "sandbox never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let o = env.gv(&["--", "true"]);
    assert_eq!(code(&o), 0, "{o:?}");
    // The orphan's init sees its control channel close and ends by itself
    // too; either way nothing may remain.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    env.assert_clean();
    assert!(Path::new(&env.state).exists());
}

/// Every file under `dir` (recursively, not following symlinks) whose
/// bytes contain `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for ent in rd.flatten() {
        let p = ent.path();
        let Ok(ft) = ent.file_type() else { continue };
        if ft.is_dir() {
            found.extend(files_holding(&p, needle));
        } else if ft.is_file() {
            if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(p);
                }
            }
        }
    }
    found
}

/// A sandbox's environment holds its tenant's secrets. The bundle's
/// config.json used to hold it (process env and the init's `--config`),
/// readable by any host user (0644 in 0755 directories). Now it reaches the
/// init over its control channel only: no file under the tier's state
/// holds the value, and the state is root's alone anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_file_holds_a_sandboxes_secrets() {
    let secret = format!("s3cret-{}", common::token());
    let hostname = format!("h{}", common::token());
    let mut spec = warden_spec::SandboxSpec::default();
    spec.env.push(("API_TOKEN".into(), secret.clone()));
    spec.hostname = hostname.clone();
    let sb = common::Sb::on(common::Tier::Gvisor, spec).await;
    // The control: the sandbox has it, and the scan finds what is in the
    // bundle (the hostname, in config.json).
    assert_eq!(sb.ok("printf %s \"$API_TOKEN\"").await, secret);
    let gv = Path::new(common::STATE_DIR).join("gvisor");
    let bundle = gv.join("bundles").join(sb.sandbox.as_ref().unwrap().id());
    assert!(
        files_holding(&bundle, hostname.as_bytes()).contains(&bundle.join("config.json")),
        "the scan does not see the bundle"
    );
    let leaks = files_holding(&gv, secret.as_bytes());
    assert!(leaks.is_empty(), "the secret is in {leaks:?}");
    // And nobody else may look.
    let nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(bundle.join("config.json"))
        .output()
        .unwrap();
    assert!(
        !nobody.status.success() && text(&nobody.stderr).contains("Permission denied"),
        "nobody read the bundle: {nobody:?}"
    );
    sb.destroy();
}

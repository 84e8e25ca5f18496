//! What `warden run` builds once and reuses across processes (`cache.rs`):
//! the native tier's /etc and /dev templates and the gVisor tier's shared
//! skeleton. Real `warden run` processes, each test with a state directory
//! and cgroup parent of its own, removed afterwards even when an assertion
//! fails first (`Env`'s Drop).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Env {
    state: PathBuf,
    cgroup_parent: String,
}

impl Env {
    fn new(name: &str) -> Env {
        let env = Env {
            state: PathBuf::from(format!("/run/warden-test-cache-{name}")),
            cgroup_parent: format!("warden-test-cache-{name}"),
        };
        env.clean();
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::warden_bin());
        c.arg("run")
            .args(args)
            .env("WARDEN_STATE_DIR", &self.state)
            .env("WARDEN_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run warden")
    }

    /// Names in a cache directory (entries and work in progress).
    fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state.join(rel))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The one entry of `kind` in a cache directory.
    fn entry(&self, rel: &str, kind: &str) -> PathBuf {
        let names = self.names(rel);
        let of_kind: Vec<_> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{kind}.")))
            .collect();
        assert_eq!(of_kind.len(), 1, "{kind} entries in {rel}: {names:?}");
        self.state.join(rel).join(of_kind[0])
    }

    /// The name of [`Env::entry`].
    fn entry_name(&self, rel: &str, kind: &str) -> String {
        let entry = self.entry(rel, kind);
        entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
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

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "warden run failed: {:?}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ino(p: &Path) -> u64 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

/// What a sandbox's /etc must show: Warden's accounts, the host's
/// harmless files, this sandbox's hostname.
const ETC_PROBE: &str =
    "grep -q '^sandbox:' /etc/passwd && test -s /etc/os-release && cat /etc/hostname";

#[test]
fn a_second_run_uses_the_templates_the_first_one_built() {
    let env = Env::new("reuse");
    assert_eq!(ok(&env.run(&["--", "sh", "-c", ETC_PROBE])), "sandbox\n");
    let (etc, dev) = (env.entry("templates", "etc"), env.entry("templates", "dev"));
    let before = [
        ino(&etc),
        ino(&etc.join("tree/passwd")),
        ino(&dev),
        ino(&dev.join("tree/null")),
    ];
    // The first run has exited: what it built is still there, complete.
    assert!(etc.join("complete").is_file());
    assert_eq!(ok(&env.run(&["--", "sh", "-c", ETC_PROBE])), "sandbox\n");
    let after = [
        ino(&env.entry("templates", "etc")),
        ino(&etc.join("tree/passwd")),
        ino(&env.entry("templates", "dev")),
        ino(&dev.join("tree/null")),
    ];
    assert_eq!(before, after, "the second run rebuilt the templates");
    // /etc, /dev and the compiled seccomp filters, and the memo of the
    // /etc key (so the second run did not walk the host's /etc).
    assert_eq!(
        env.names("templates"),
        [
            env.entry_name("templates", "dev"),
            env.entry_name("templates", "etc"),
            "memo.etc".to_string(),
            env.entry_name("templates", "seccomp"),
        ],
    );
}

#[test]
fn a_template_without_its_marker_is_rebuilt_before_any_sandbox_sees_it() {
    let env = Env::new("half");
    ok(&env.run(&["--", "true"]));
    let etc = env.entry("templates", "etc");
    // As a builder killed half-way would leave it, plus a file that must
    // never reach a sandbox.
    std::fs::remove_file(etc.join("complete")).unwrap();
    std::fs::write(etc.join("tree/planted"), "not from the host").unwrap();
    let out = env.run(&[
        "--",
        "sh",
        "-c",
        &format!("! test -e /etc/planted && {ETC_PROBE}"),
    ]);
    assert_eq!(ok(&out), "sandbox\n", "the half-written template was used");
    let etc = env.entry("templates", "etc");
    assert!(etc.join("complete").is_file());
    assert!(!etc.join("tree/planted").exists());
}

#[test]
fn concurrent_first_runs_all_succeed_and_share_one_build() {
    let env = Env::new("concurrent");
    let children: Vec<_> = (0..6)
        .map(|_| {
            env.cmd(&["--", "sh", "-c", ETC_PROBE])
                .spawn()
                .expect("spawn warden")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait warden");
        assert_eq!(ok(&out), "sandbox\n");
    }
    // One entry each; the builds that lost the race are gone.
    let entries: Vec<String> = env
        .names("templates")
        .into_iter()
        .filter(|n| !n.starts_with("memo."))
        .collect();
    assert_eq!(
        entries,
        [
            env.entry_name("templates", "dev"),
            env.entry_name("templates", "etc"),
            env.entry_name("templates", "seccomp"),
        ],
    );
}

#[test]
fn a_second_gvisor_run_uses_the_skeleton_the_first_one_built() {
    let env = Env::new("gvisor");
    let gv = |args: &[&str]| {
        let mut all = vec!["--isolation", "gvisor", "--"];
        all.extend_from_slice(args);
        env.run(&all)
    };
    assert_eq!(ok(&gv(&["sh", "-c", ETC_PROBE])), "sandbox\n");
    let root = env.entry("gvisor/templates", "root");
    let before = (ino(&root), ino(&root.join("tree/etc/passwd")));
    assert_eq!(ok(&gv(&["sh", "-c", ETC_PROBE])), "sandbox\n");
    let root = env.entry("gvisor/templates", "root");
    assert_eq!(
        (ino(&root), ino(&root.join("tree/etc/passwd"))),
        before,
        "the second run rebuilt the skeleton"
    );
    // The platform probe is remembered too.
    assert!(env.state.join("gvisor/platform").is_file());
}

//! Shared harness for the sandbox suites: real sandboxes through the native
//! runtime, driven over the real protocol. Every sandbox is destroyed when
//! its handle drops, even when an assertion fails first.
#![allow(dead_code)]

pub mod batch;
pub mod passing;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use warden_protocol::{Client, ExecOutput, ExecRequest};
use warden_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warden_runtime::native::{NativeConfig, NativeRuntime};
use warden_runtime::{Runtime, Sandbox};
use warden_spec::{Isolation, SandboxSpec};

/// The built `warden` binary.
pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// `warden-init` next to `warden`, preferring the static build `make build`
/// installs (as `warden run` does).
pub fn init_bin() -> PathBuf {
    let bin = warden_bin();
    warden_runtime::native::init_in(bin.parent().expect("binary directory"))
}

/// State kept apart from a real installation's.
pub const STATE_DIR: &str = "/run/warden-test";
pub const CGROUP_PARENT: &str = "warden-test";

pub fn runtime() -> &'static NativeRuntime {
    static RT: OnceLock<NativeRuntime> = OnceLock::new();
    RT.get_or_init(|| {
        NativeRuntime::new(NativeConfig {
            init_path: init_bin(),
            state_dir: STATE_DIR.into(),
            cgroup_parent: CGROUP_PARENT.into(),
            favor_dynmods: true,
            // A static is never dropped, so this runtime keeps nothing
            // pre-started: the groups would outlive the test binary. The
            // pre-start pool has tests of its own (prestart.rs, leak.rs).
            prestart: 0,
        })
        .expect("native runtime (tests must run as root)")
    })
}

/// The gVisor tier, sharing the native suite's state directory (it keeps
/// to `<state>/gvisor`) and cgroup parent (its groups are named `wg-…`,
/// never `slot-N`). One per test binary, like [`runtime`].
pub fn gvisor_runtime() -> &'static GvisorRuntime {
    static RT: OnceLock<GvisorRuntime> = OnceLock::new();
    RT.get_or_init(|| {
        GvisorRuntime::new(GvisorConfig {
            init_path: init_bin(),
            state_dir: STATE_DIR.into(),
            cgroup_parent: CGROUP_PARENT.into(),
            ..Default::default()
        })
        .expect("gVisor runtime (runsc installed? `make test` installs it)")
    })
}

/// The isolation tier a scenario runs on. Scenarios shared by both tiers
/// take one; [`both_tiers!`] makes a `native` and a `gvisor` test of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Native,
    Gvisor,
}

impl Tier {
    pub fn runtime(self) -> &'static dyn Runtime {
        match self {
            Tier::Native => runtime(),
            Tier::Gvisor => gvisor_runtime(),
        }
    }

    pub fn isolation(self) -> Isolation {
        match self {
            Tier::Native => Isolation::Native,
            Tier::Gvisor => Isolation::Gvisor,
        }
    }

    pub fn is_gvisor(self) -> bool {
        self == Tier::Gvisor
    }

    /// Says (on stderr, in the test's output) that a check does not apply
    /// to this tier and why; the caller then skips it.
    pub fn skip(self, what: &str, why: &str) {
        eprintln!("skipped on {self:?}: {what}: {why}");
    }
}

/// `both_tiers!(a, b)`: for each `async fn a(tier: Tier)` in scope, a test
/// module `a` holding the tests `a::native` and `a::gvisor`.
#[allow(unused_macros)]
macro_rules! both_tiers {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn native() {
                super::$name(crate::common::Tier::Native).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gvisor() {
                super::$name(crate::common::Tier::Gvisor).await
            }
        }
    )*};
}

/// What a destroyed gVisor sandbox could have left on the host: a process
/// naming it (runsc, its gofer, its Sentry), runsc state, its bundle, its
/// cgroup in any hierarchy.
pub fn gvisor_leftovers(id: &str) -> Vec<String> {
    let mut left = Vec::new();
    for ent in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmd) = std::fs::read(ent.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(id) {
            left.push(format!(
                "process {}: {cmd}",
                ent.file_name().to_string_lossy()
            ));
        }
    }
    let gv = PathBuf::from(STATE_DIR).join("gvisor");
    for dir in [gv.join("runsc"), gv.join("bundles")] {
        for ent in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if ent.file_name().to_string_lossy().contains(id) {
                left.push(ent.path().display().to_string());
            }
        }
    }
    for ctl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let cg = ctl.path().join(CGROUP_PARENT).join(id);
        if cg.exists() {
            left.push(format!("cgroup {}", cg.display()));
        }
    }
    left
}

/// A live sandbox and its protocol client.
pub struct Sb {
    pub sandbox: Option<Box<dyn Sandbox>>,
    pub client: Client,
    /// The gVisor sandbox's id, checked for leftovers once destroyed.
    gvisor_id: Option<String>,
}

impl Sb {
    pub async fn start(spec: SandboxSpec) -> Sb {
        Sb::start_on(runtime(), spec).await
    }

    /// A sandbox of another runtime (e.g. the gVisor tier).
    pub async fn start_on(rt: &dyn Runtime, spec: SandboxSpec) -> Sb {
        let mut sandbox = rt.start(&spec).expect("start sandbox");
        let gvisor_id = (spec.isolation == Isolation::Gvisor).then(|| sandbox.id().to_string());
        let control = sandbox.take_control().expect("control channel");
        control.set_nonblocking(true).unwrap();
        let stream = tokio::net::UnixStream::from_std(control).unwrap();
        // As `warden serve` connects (files pass on both tiers).
        let client = Client::connect_passing_files(stream)
            .await
            .expect("init handshake");
        Sb {
            sandbox: Some(sandbox),
            client,
            gvisor_id,
        }
    }

    /// Wraps a started sandbox and its client (e.g. a restored one);
    /// `gvisor` checks for leftovers once it is destroyed.
    pub fn adopt(sandbox: Box<dyn Sandbox>, client: Client, gvisor: bool) -> Sb {
        let gvisor_id = gvisor.then(|| sandbox.id().to_string());
        Sb {
            sandbox: Some(sandbox),
            client,
            gvisor_id,
        }
    }

    /// A sandbox of `spec` on `tier` (its isolation set accordingly).
    pub async fn on(tier: Tier, mut spec: SandboxSpec) -> Sb {
        spec.isolation = tier.isolation();
        Sb::start_on(tier.runtime(), spec).await
    }

    pub async fn default_on(tier: Tier) -> Sb {
        Sb::on(tier, SandboxSpec::default()).await
    }

    pub async fn default() -> Sb {
        Sb::start(SandboxSpec::default()).await
    }

    /// Runs a shell line to completion.
    pub async fn sh(&self, line: &str) -> ExecOutput {
        self.client
            .exec_collect(ExecRequest::shell(line))
            .await
            .expect("exec")
    }

    /// Runs a shell line and returns its stdout, asserting exit 0.
    pub async fn ok(&self, line: &str) -> String {
        let out = self.sh(line).await;
        assert_eq!(
            out.status.code,
            Some(0),
            "{line:?} failed: {out:?} stderr={}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn destroy(mut self) -> warden_runtime::SandboxStats {
        let stats = self.sandbox.take().unwrap().destroy().expect("destroy");
        self.check_leftovers();
        stats
    }

    /// Fails the test if a destroyed gVisor sandbox left anything behind
    /// (unless it is failing already: the sandbox is gone either way).
    fn check_leftovers(&mut self) {
        if let Some(id) = self.gvisor_id.take() {
            let left = gvisor_leftovers(&id);
            if !left.is_empty() && !std::thread::panicking() {
                panic!("gVisor sandbox {id} left behind: {left:#?}");
            }
        }
    }
}

impl Drop for Sb {
    fn drop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            let _ = s.destroy();
        }
        self.check_leftovers();
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Removes what `warden run` processes with a state directory and cgroup
/// parent of their own may have left: runsc containers under
/// `<state>/gvisor/runsc`, the state directory, the parent's groups.
pub fn remove_private_runtime(state: &Path, cgroup_parent: &str) {
    let runsc = |args: &[&str]| {
        std::process::Command::new("runsc")
            .arg("--root")
            .arg(state.join("gvisor/runsc"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .output()
    };
    if let Ok(out) = runsc(&["list", "--quiet"]) {
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = runsc(&["kill", id, "KILL"]);
            let _ = runsc(&["delete", "--force", id]);
        }
    }
    let _ = std::fs::remove_dir_all(state);
    for ctl in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let parent = ctl.path().join(cgroup_parent);
        for ent in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(ent.path());
        }
        let _ = std::fs::remove_dir(&parent);
    }
}

/// A fresh random token, different per call and per process (no rand
/// crate in this package).
pub fn token() -> String {
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

//! Shared harness for the sandbox suites: real sandboxes through the native
//! runtime, driven over the real protocol. Every sandbox is destroyed when
//! its handle drops, even when an assertion fails first.
#![allow(dead_code)]

pub mod watch;

use std::path::PathBuf;
use std::sync::OnceLock;
use warden_protocol::{Client, ExecOutput, ExecRequest};
use warden_runtime::native::{NativeConfig, NativeRuntime};
use warden_runtime::{Runtime, Sandbox};
use warden_spec::SandboxSpec;

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
        })
        .expect("native runtime (tests must run as root)")
    })
}

/// A live sandbox and its protocol client.
pub struct Sb {
    pub sandbox: Option<Box<dyn Sandbox>>,
    pub client: Client,
}

impl Sb {
    pub async fn start(spec: SandboxSpec) -> Sb {
        Sb::start_on(runtime(), spec).await
    }

    /// A sandbox of another runtime (e.g. the gVisor tier).
    pub async fn start_on(rt: &dyn Runtime, spec: SandboxSpec) -> Sb {
        let mut sandbox = rt.start(&spec).expect("start sandbox");
        let control = sandbox.take_control().expect("control channel");
        control.set_nonblocking(true).unwrap();
        let stream = tokio::net::UnixStream::from_std(control).unwrap();
        let client = Client::connect(stream).await.expect("init handshake");
        Sb {
            sandbox: Some(sandbox),
            client,
        }
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
        self.sandbox.take().unwrap().destroy().expect("destroy")
    }
}

impl Drop for Sb {
    fn drop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            let _ = s.destroy();
        }
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

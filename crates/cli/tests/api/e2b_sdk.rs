//! The E2B front door through the official SDKs, unchanged: a real server,
//! two tenants, and the compatibility scripts (tests/e2b/compat.py on the
//! pinned Python SDK, tests/e2b/js/compat.mjs on the pinned npm package,
//! code_interpreter.py / js/code_interpreter.mjs on the pinned code
//! interpreter SDKs, and compat_memory.py / js/compat_memory.mjs against a
//! server whose E2B sandboxes run on gVisor) pointed at it with
//! E2B_API_URL / E2B_SANDBOX_URL. The SDKs are installed
//! by `make e2b-sdk` (a prerequisite of `make test`); without them these
//! tests fail and say so, they never skip.

use crate::harness::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A script may take this long; the server and its sandboxes go with it.
const DEADLINE: Duration = Duration::from_secs(150);

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The file `make e2b-sdk` leaves once an SDK is installed.
pub(crate) fn installed(stamp: &Path, what: &str) {
    assert!(
        stamp.exists(),
        "{what} is not installed ({} missing): run `make e2b-sdk` in {}",
        stamp.display(),
        repo().display()
    );
}

/// Runs one compatibility script against a fresh server with two tenants;
/// fails with its whole output (and the server's log) unless it exits 0.
async fn run_script(cmd: Command) {
    run_script_on(Server::start(), cmd).await
}

/// [`run_script`] against `server`.
async fn run_script_on(server: Server, cmd: Command) {
    run_script_keyed(server, cmd, |key| key.to_string()).await
}

/// [`run_script_on`] with the main tenant's key spelled by `spell`.
async fn run_script_keyed(server: Server, mut cmd: Command, spell: fn(&str) -> String) {
    let (_, main) = server.admin().tenant("e2b-sdk", None).await;
    let (_, other) = server.admin().tenant("e2b-sdk-other", None).await;
    cmd.env("E2B_API_URL", &server.url)
        .env("E2B_SANDBOX_URL", &server.url)
        .env("E2B_API_KEY", spell(&main.token))
        .env("WARDEN_OTHER_TENANT_KEY", &other.token)
        // Nothing from the caller's environment may point the SDK elsewhere.
        .env_remove("E2B_DOMAIN")
        .env_remove("E2B_DEBUG")
        .env_remove("E2B_ACCESS_TOKEN");
    run_checked(&server, cmd).await;
}

/// Runs a client script (its environment set) against `server`; fails with
/// its whole output (and the server's log) unless it exits 0 with a clean
/// summary line, or if any sandbox it made is left behind.
pub(crate) async fn run_checked(server: &Server, cmd: Command) {
    let (out, report) = run_to_success(server, cmd, "the compatibility script").await;
    let summary: serde_json::Value =
        serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap_or_default();
    assert!(
        summary["failed"].as_object().is_some_and(|f| f.is_empty())
            && summary["passed"].as_u64() > Some(0),
        "no clean summary line:\n{report}"
    );
    println!("{out}");
}

/// Runs `cmd` (its environment set) against `server` with its output
/// captured; fails with its whole output and the server's log (`what`
/// names it) unless it exits 0 and every sandbox it made is gone. Returns
/// its stdout and that report, for the caller's own checks.
pub(crate) async fn run_to_success(
    server: &Server,
    mut cmd: Command,
    what: &str,
) -> (String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let script = format!("{cmd:?}");
    let (status, out, err) = tokio::task::spawn_blocking(move || wait_capped(cmd))
        .await
        .expect("script runner");
    let report = format!(
        "{script}\n--- stdout\n{out}\n--- stderr\n{err}\n--- server log\n{}",
        server.log.lock().map(|l| l.clone()).unwrap_or_default()
    );
    assert_eq!(status, Some(0), "{what} failed:\n{report}");
    // Every sandbox it made is gone: killed, or expired and reaped.
    let t0 = Instant::now();
    while !cgroups_left(server).is_empty() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cgroups_left(server).is_empty(),
        "sandboxes left behind: {:?}\n{report}",
        cgroups_left(server)
    );
    (out, report)
}

/// Waits for the script (killing it at the deadline); returns its exit
/// code (None if killed) and its output.
fn wait_capped(mut cmd: Command) -> (Option<i32>, String, String) {
    let mut child = cmd.spawn().expect("start the compatibility script");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if t0.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = err.join().unwrap_or_default();
    if status.is_none() {
        err.push_str(&format!("\n(killed after {DEADLINE:?})"));
    }
    (status, out.join().unwrap_or_default(), err)
}

/// `script` (under the repository) run by the Python of the virtualenv
/// `venv` (under the repository), which `make` installed with `what`.
fn venv_python(venv: &str, what: &str, script: &str) -> Command {
    let venv = repo().join(venv);
    installed(&venv.join(".installed"), what);
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg(repo().join(script)).env("PYTHONUNBUFFERED", "1");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_unchanged() {
    let cmd = venv_python(
        "target/e2b-venv",
        "the e2b Python SDK",
        "tests/e2b/compat.py",
    );
    run_script(cmd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdk_runs_unchanged() {
    let js = repo().join("tests/e2b/js");
    installed(&js.join("node_modules/.installed"), "the e2b npm package");
    let mut cmd = Command::new("node");
    // The key in E2B's format (`e2b_` + hex, as `warden key create` also
    // gives it), which newer JS SDKs insist on; the Python run uses the
    // plain spelling.
    cmd.arg("compat.mjs")
        .current_dir(&js)
        .env("E2B_VALIDATE_API_KEY", "true");
    run_script_keyed(Server::start(), cmd, e2b_spelling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_interpreter_sdk_runs_unchanged() {
    let cmd = venv_python(
        "target/e2b-venv",
        "the e2b Python SDKs",
        "tests/e2b/code_interpreter.py",
    );
    run_script(cmd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_code_interpreter_sdk_runs_unchanged() {
    let js = repo().join("tests/e2b/js");
    installed(&js.join("node_modules/.installed"), "the e2b npm packages");
    let mut cmd = Command::new("node");
    cmd.arg("code_interpreter.mjs").current_dir(&js);
    run_script(cmd).await;
}

/// An integration that wraps the E2B SDK, as its users run it: LangChain
/// Deep Agents' E2B backend (`langchain-e2b`), with its defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_langchain_e2b_backend_runs_unchanged() {
    let cmd = venv_python(
        "target/e2b-integrations-venv",
        "langchain-e2b",
        "tests/e2b/integrations/langchain_e2b_backend.py",
    );
    run_script(cmd).await;
}

/// A server whose E2B sandboxes run on gVisor, where `pause()` keeps
/// processes and memory as on E2B.
fn gvisor_server() -> Server {
    Server::start_env(RuntimeDirs::shared(), &[("WARDEN_E2B_ISOLATION", "gvisor")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_pauses_with_memory_on_gvisor() {
    let cmd = venv_python(
        "target/e2b-venv",
        "the e2b Python SDK",
        "tests/e2b/compat_memory.py",
    );
    run_script_on(gvisor_server(), cmd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdk_pauses_with_memory_on_gvisor() {
    let js = repo().join("tests/e2b/js");
    installed(&js.join("node_modules/.installed"), "the e2b npm package");
    let mut cmd = Command::new("node");
    cmd.arg("compat_memory.mjs").current_dir(&js);
    run_script_on(gvisor_server(), cmd).await;
}

//! The code interpreter: stateful Jupyter kernels in a sandbox, behind the
//! HTTP API of E2B's code interpreter (`interpreter.py`, which runs inside
//! the sandbox as the sandbox's own process, on port [`PORT`]).
//!
//! E2B's `code-interpreter-v1` template (what `e2b_code_interpreter` and
//! `@e2b/code-interpreter` create) is a data image with the interpreter
//! started: the create answers once it listens, so the SDK's first
//! `run_code` finds it. Its requests then reach it like any other port of
//! the sandbox (`service::ports`), through the sandbox's init.

pub mod client;
pub mod lines;

use crate::manager::Live;
use crate::service::{Error, Result};
use std::time::Duration;
use warden_protocol::{Command, ErrorKind, ExecRequest};

/// Where E2B's SDKs look for the interpreter.
pub const PORT: u16 = 49999;
/// The image the interpreter runs in: Python with the data stack and
/// `python3-ipykernel`, Deno, R with IRkernel and bash_kernel
/// (`images/python-data`: `packages` and `extras`).
pub const IMAGE: &str = "python-data";
/// The memory of an E2B code interpreter sandbox (E2B's template sizes
/// theirs): its default Python and JavaScript kernels start with it.
pub const MEMORY_MB: u64 = 1024;
/// How long the interpreter may take to listen (its Python imports; the
/// first kernel starts after it listens).
const START_LIMIT: Duration = Duration::from_secs(60);

const SERVER: &str = include_str!("interpreter.py");
/// What the interpreter runs in each kernel it starts (read beside it).
const KERNEL_STARTUP: &str = include_str!("kernel_startup.py");
const DIR: &str = "/tmp/.warden-code";
const SCRIPT: &str = "/tmp/.warden-code/interpreter.py";

/// E2B template names that mean "the code interpreter".
pub fn is_template(name: &str) -> bool {
    let base = name.split(':').next().unwrap_or(name);
    matches!(base, "code-interpreter-v1" | "code-interpreter")
}

/// Starts the interpreter in `live` unless it already runs there (once:
/// concurrent callers wait for the one starting it).
pub async fn ensure(live: &Live) -> Result<()> {
    let mut started = live.interpreter.lock().await;
    if !*started {
        start(live).await?;
        *started = true;
    }
    Ok(())
}

/// Starts the interpreter in `live` (as a background process of the
/// sandbox's) and waits until it listens on [`PORT`].
async fn start(live: &Live) -> Result<()> {
    let client = &live.client;
    client.mkdir(DIR, true).await?;
    client.write_file(SCRIPT, 0o644, SERVER.as_bytes()).await?;
    client
        .write_file(
            &format!("{DIR}/kernel_startup.py"),
            0o644,
            KERNEL_STARTUP.as_bytes(),
        )
        .await?;
    let mut req = ExecRequest {
        command: Command::Argv(vec!["python3".into(), SCRIPT.into(), PORT.to_string()]),
        ..ExecRequest::argv(Vec::<String>::new())
    };
    // debugpy (an ipykernel dependency) warns on every kernel start
    // otherwise.
    req.env = vec![("PYDEVD_DISABLE_FILE_VALIDATION".into(), "1".into())];
    let pid = client.spawn(req).await?;
    let listening = async {
        loop {
            match client.connect_port(PORT).await {
                Ok(_) => return Ok(()),
                Err(e) if e.remote_kind() == Some(ErrorKind::Refused) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(Error::from(e)),
            }
        }
    };
    let exited = client.wait(pid);
    tokio::select! {
        r = listening => r,
        status = exited => Err(Error::Invalid(format!(
            "the code interpreter did not start (it exited: {}); it needs Python with \
             python3-ipykernel, as the {IMAGE} image has",
            match status {
                Ok(s) => format!("status {}", s.shell_code()),
                Err(e) => e.to_string(),
            }
        ))),
        _ = tokio::time::sleep(START_LIMIT) => Err(Error::internal(
            "starting the code interpreter",
            format!("it did not listen on port {PORT} within {START_LIMIT:?}"),
        )),
    }
}

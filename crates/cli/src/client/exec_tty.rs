//! `warden exec -t`: a command on a terminal in the sandbox, driven from
//! this one. The command starts in the background with a terminal of this
//! terminal's size (`tty`), its output is followed (`/processes/{pid}/output`),
//! what is typed is sent as it comes (`/stdin`: this terminal is in raw
//! mode, so Ctrl-C, Ctrl-D and the arrow keys reach the command as bytes),
//! and every resize of this terminal (SIGWINCH) is passed on (`/resize`).
//! The exit status is the command's, as for `warden exec`.

use super::exec::stream;
use super::http::Api;
use anyhow::{bail, Context, Result};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{IsTerminal, Read};

/// This terminal's size (of stdout, else stdin), or 80x24.
fn size() -> (u16, u16) {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ fills the struct it is given.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return (ws.ws_col, ws.ws_row.max(1));
        }
    }
    (80, 24)
}

/// This terminal in raw mode until dropped (also on an error's way out).
struct Raw {
    saved: libc::termios,
}

impl Raw {
    fn enter() -> Result<Raw> {
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the struct; cfmakeraw edits it in place.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return Err(std::io::Error::last_os_error()).context("reading the terminal's mode");
        }
        let saved = t;
        unsafe { libc::cfmakeraw(&mut t) };
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setting raw mode");
        }
        Ok(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: restores the mode read in `enter`.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}

pub async fn run(api: &Api, sandbox: &str, mut body: Value) -> Result<i32> {
    if !std::io::stdin().is_terminal() {
        bail!("-t needs a terminal on stdin (drop -t to pipe input)");
    }
    let (cols, rows) = size();
    body["background"] = json!(true);
    body["tty"] = json!({"cols": cols, "rows": rows});
    let started = api
        .json(
            api.request(Method::POST, &["v1", "sandboxes", sandbox, "exec"])?
                .json(&body),
        )
        .await?;
    let pid = started["pid"]
        .as_u64()
        .context("the server did not say which process it started")?
        .to_string();
    let output = api
        .send(
            api.request(
                Method::GET,
                &["v1", "sandboxes", sandbox, "processes", &pid, "output"],
            )?
            .header(ACCEPT, "text/event-stream"),
        )
        .await?;
    let raw = Raw::enter()?;
    let typing = tokio::spawn(forward_input(api.clone(), sandbox.to_string(), pid.clone()));
    let resizing = tokio::spawn(forward_resizes(api.clone(), sandbox.to_string(), pid));
    let code = stream(api, output, &mut std::io::stdout(), &mut std::io::stderr()).await;
    typing.abort();
    resizing.abort();
    drop(raw);
    code
}

/// Sends what is typed, chunk by chunk as read, until the command ends.
async fn forward_input(api: Api, sandbox: String, pid: String) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    // A plain thread: a read of the terminal cannot be cancelled, and the
    // process exits with the command anyway.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let segments = ["v1", "sandboxes", &sandbox, "processes", &pid, "stdin"];
    while let Some(chunk) = rx.recv().await {
        let Ok(rb) = api.request(Method::POST, &segments) else {
            return;
        };
        let rb = rb
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(chunk);
        if api.send(rb).await.is_err() {
            return;
        }
    }
}

/// Passes this terminal's size on at every SIGWINCH.
async fn forward_resizes(api: Api, sandbox: String, pid: String) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    let segments = ["v1", "sandboxes", &sandbox, "processes", &pid, "resize"];
    while winch.recv().await.is_some() {
        let (cols, rows) = size();
        let Ok(rb) = api.request(Method::POST, &segments) else {
            return;
        };
        let _ = api
            .send(rb.json(&json!({"cols": cols, "rows": rows})))
            .await;
    }
}

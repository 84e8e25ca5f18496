//! Commands on a terminal through `/v1` (`"tty": {cols, rows}` on exec,
//! `/processes/{pid}/resize`) and `warden exec -t`, driven from a real
//! pseudo-terminal as a person at a terminal would drive it.

use crate::harness::*;
use serde_json::json;
use std::process::Command;

/// Runs `warden exec -t` under a pseudo-terminal of 111x33: types a line,
/// resizes the terminal to 122x44, types another, and reports everything
/// the terminal showed and the exit status.
const DRIVER: &str = r#"
import fcntl, os, pty, select, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 111, 0, 0))
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
def pump(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            out += data
    return True
pump(1.0)
os.write(fd, b'stty size\n')
pump(1.0)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 44, 122, 0, 0))
pump(1.0)
os.write(fd, b'stty size; exit 3\n')
deadline = time.time() + 20
while time.time() < deadline and pump(0.2):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(repr(out) + '\n')
sys.stdout.write(f'status={os.waitstatus_to_exitcode(status)}\n')
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_a_terminal_over_the_api_and_the_cli() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("tty", None).await;
    let key = a.token.clone();
    let sb = a.sandbox(json!({})).await;

    let v = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "stty size; tty", "tty": {"cols": 100, "rows": 30}}),
        )
        .await;
    assert_eq!(v.status, 200, "{}", v.text);
    let out = v.body["stdout"].as_str().unwrap();
    assert!(out.starts_with("30 100\r\n/dev/pts/"), "{out:?}");
    let bad = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "true", "tty": {"cols": 0, "rows": 30}}),
        )
        .await;
    refused(&bad, 400, "bad_request");
    // A process without a terminal cannot be resized.
    let bg = a
        .post(
            &format!("/v1/sandboxes/{sb}/exec"),
            json!({"shell": "sleep 30", "background": true}),
        )
        .await;
    let pid = bg.body["pid"].as_u64().unwrap();
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/processes/{pid}/resize"),
            json!({"cols": 10, "rows": 10}),
        )
        .await;
    refused(&r, 400, "bad_request");

    // The CLI at a real terminal: typed lines, a resize, the exit status.
    let out = Command::new("python3")
        .args(["-c", DRIVER])
        .arg(warden_bin())
        .args(["exec", "-t", &sb, "--", "sh"])
        .env("WARDEN_URL", &server.url)
        .env("WARDEN_API_KEY", &key)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("33 111"), "{text}");
    assert!(text.contains("44 122"), "{text}");
    assert!(text.trim_end().ends_with("status=3"), "{text}");

    // Control: without a terminal on stdin, -t says so.
    let plain = Command::new(warden_bin())
        .args(["exec", "-t", &sb, "--", "true"])
        .env("WARDEN_URL", &server.url)
        .env("WARDEN_API_KEY", &key)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("needs a terminal"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
}

//! Behaviour of real sandboxes through the real protocol: exec semantics,
//! streaming, stdin, background processes, sessions, file operations,
//! /input, limits and directory watches. Every scenario runs on both
//! isolation tiers (`<name>::native`, `<name>::gvisor`).

#[macro_use]
mod common;

use common::{batch, passing, text, watch, Sb, Tier};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use warden_protocol::{ErrorKind, ExecRequest, FileKind, FsEventKind, Request, Response};
use warden_spec::SandboxSpec;

/// `stat -c '%s %U' /scratch/big.bin` without statx, which Debian's runsc
/// (2022) answers with EINVAL, breaking coreutils' `ls` and `stat`.
const STAT_WITHOUT_STATX: &str = "python3 -c \"import os, pwd; s = os.stat('/scratch/big.bin'); \
     print(s.st_size, pwd.getpwuid(s.st_uid).pw_name)\"";

/// A shell snippet printing how many descriptors its last process has open
/// (`ls` and its directory descriptor; Python's `listdir` under gVisor,
/// whose 2022 runsc breaks `ls`, see [`STAT_WITHOUT_STATX`]).
fn count_fds(tier: Tier) -> &'static str {
    match tier {
        Tier::Native => "ls /proc/self/fd | wc -l",
        Tier::Gvisor => "python3 -c \"import os; print(len(os.listdir('/proc/self/fd')))\"",
    }
}

async fn exit_codes_and_signals(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let out = sb.sh("echo out; echo err >&2; exit 7").await;
    assert_eq!(out.status.code, Some(7));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    let out = sb.sh("kill -TERM $$").await;
    assert_eq!((out.status.code, out.status.signal), (None, Some(15)));
    assert_eq!(out.status.shell_code(), 143);
    let argv = sb
        .client
        .exec_collect(ExecRequest::argv(["/bin/echo", "a b", "$HOME"]))
        .await
        .unwrap();
    assert_eq!(text(&argv.stdout), "a b $HOME\n", "argv is not re-parsed");
    let missing = sb
        .client
        .exec_collect(ExecRequest::argv(["no-such-command"]))
        .await;
    assert_eq!(
        missing.unwrap_err().remote_kind(),
        Some(ErrorKind::NotFound)
    );
}

async fn per_command_timeout_kills_the_whole_group(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let mut req = ExecRequest::shell("sleep 30 & sleep 30; echo never");
    req.timeout_ms = Some(300);
    let t = Instant::now();
    let out = sb.client.exec_collect(req).await.unwrap();
    assert!(out.status.timed_out, "{out:?}");
    assert_eq!(out.status.signal, Some(9));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(!text(&out.stdout).contains("never"));
    // The background sleep was in the same process group: gone too.
    let ps = sb.ok("ps -eo comm= | grep -c '^sleep$' || true").await;
    assert_eq!(ps.trim(), "0", "a sleep survived the timeout");
}

async fn output_streams_before_the_command_ends(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let t = Instant::now();
    let mut s = sb
        .client
        .stream(Request::Exec(ExecRequest::shell(
            "echo first; sleep 2; echo second",
        )))
        .unwrap();
    let mut first_at = None;
    let mut second_at = None;
    while let Some(r) = s.next().await.unwrap() {
        match r {
            Response::Stdout(d) if text(&d).contains("first") => first_at = Some(t.elapsed()),
            Response::Stdout(d) if text(&d).contains("second") => second_at = Some(t.elapsed()),
            Response::Exited(st) => assert_eq!(st.code, Some(0)),
            _ => {}
        }
    }
    let (first, second) = (first_at.unwrap(), second_at.unwrap());
    assert!(
        first + Duration::from_millis(1500) < second,
        "first line at {first:?} was not streamed before the sleep ended ({second:?})"
    );
}

async fn stdin_is_streamed_and_closable(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let mut req = ExecRequest::shell("tr a-z A-Z; echo done");
    req.stdin = true;
    let mut s = sb.client.stream(Request::Exec(req)).unwrap();
    let pid = match s.next().await.unwrap() {
        Some(Response::Started { pid }) => pid,
        other => panic!("{other:?}"),
    };
    sb.client.stdin(pid, b"hello ").await.unwrap();
    sb.client.stdin(pid, b"sandbox\n").await.unwrap();
    sb.client.close_stdin(pid).await.unwrap();
    let mut out = Vec::new();
    while let Some(r) = s.next().await.unwrap() {
        match r {
            Response::Stdout(d) => out.extend(d),
            Response::Exited(st) => assert_eq!(st.code, Some(0)),
            _ => {}
        }
    }
    assert_eq!(text(&out), "HELLO SANDBOX\ndone\n");
}

async fn a_hundred_megabytes_of_stdout_arrive_intact(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    // The sandbox hashes what it prints; the host hashes what it receives.
    let line =
        "head -c 104857600 /dev/urandom > /tmp/blob && cat /tmp/blob && sha256sum /tmp/blob >&2";
    let mut s = sb
        .client
        .stream(Request::Exec(ExecRequest::shell(line)))
        .unwrap();
    let (mut n, mut h, mut err) = (0u64, Sha256::new(), Vec::new());
    while let Some(r) = s.next().await.unwrap() {
        match r {
            Response::Stdout(d) => {
                n += d.len() as u64;
                h.update(&d);
            }
            Response::Stderr(d) => err.extend(d),
            Response::Exited(st) => assert_eq!(st.code, Some(0), "{}", text(&err)),
            _ => {}
        }
    }
    assert_eq!(n, 100 << 20);
    let ours = format!("{:x}", h.finalize());
    let theirs = text(&err);
    assert!(theirs.starts_with(&ours), "sandbox {theirs:?} host {ours}");
}

async fn background_processes_outlive_execs_and_can_be_attached(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let sleeper = sb
        .client
        .spawn(ExecRequest::shell("sleep 100"))
        .await
        .unwrap();
    // Other commands run meanwhile.
    assert_eq!(sb.ok("echo other").await, "other\n");
    let list = sb.client.list_processes().await.unwrap();
    let me = list.iter().find(|p| p.pid == sleeper).expect("listed");
    assert!(me.background && me.exit.is_none(), "{me:?}");
    // Background processes have no stdin pipe unless asked for one.
    let err = sb.client.stdin(sleeper, b"x").await.unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest));
    // Signals reach a background process group.
    sb.client.signal(sleeper, libc::SIGTERM).await.unwrap();
    assert_eq!(sb.client.wait(sleeper).await.unwrap().signal, Some(15));
    let mut req = ExecRequest::shell("echo started; read x; echo got $x; exit 3");
    req.stdin = true;
    let pid = sb.client.spawn(req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sb.client.stdin(pid, b"ping\n").await.unwrap();
    let mut s = sb
        .client
        .stream(Request::Attach { pid, replay: true })
        .unwrap();
    let mut out = Vec::new();
    let status = loop {
        match s.next().await.unwrap() {
            Some(Response::Stdout(d)) => out.extend(d),
            Some(Response::Exited(st)) => break st,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(text(&out), "started\ngot ping\n");
    assert_eq!(status.code, Some(3));
    assert_eq!(sb.client.wait(pid).await.unwrap().code, Some(3));
}

async fn sessions_carry_cwd_and_env(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let in_session = |line: &str| {
        let mut r = ExecRequest::shell(line);
        r.session = Some("s1".into());
        r
    };
    let first = sb
        .client
        .exec_collect(in_session("mkdir -p /tmp/w && cd /tmp/w && export FOO=bar"))
        .await
        .unwrap();
    assert_eq!(first.status.code, Some(0));
    let second = sb
        .client
        .exec_collect(in_session(&format!(
            "pwd; echo \"$FOO\"; {}",
            count_fds(tier)
        )))
        .await
        .unwrap();
    // Only 0, 1, 2 and ls's own directory fd: the state pipe is not leaked.
    assert_eq!(text(&second.stdout), "/tmp/w\nbar\n4\n");
    // Outside the session nothing carried over.
    assert_eq!(sb.ok("pwd; echo \"$FOO\"").await, "/scratch\n\n");
}

async fn file_operations(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let c = &sb.client;
    let big: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
    let st = c.write_file("/scratch/big.bin", 0o640, &big).await.unwrap();
    assert_eq!(
        (st.kind, st.size, st.mode),
        (FileKind::File, big.len() as u64, 0o640)
    );
    assert_eq!(c.read_file("/scratch/big.bin").await.unwrap(), big);
    // The sandbox's own processes see the same file, owned by the sandbox user.
    let size_and_owner = match tier {
        Tier::Native => "stat -c '%s %U' /scratch/big.bin",
        // Debian's runsc (2022) answers coreutils' statx with EINVAL.
        Tier::Gvisor => STAT_WITHOUT_STATX,
    };
    assert_eq!(
        sb.ok(size_and_owner).await,
        format!("{} sandbox\n", big.len())
    );
    c.mkdir("/scratch/a/b/c", true).await.unwrap();
    assert_eq!(
        c.mkdir("/scratch/x/y", false)
            .await
            .unwrap_err()
            .remote_kind(),
        Some(ErrorKind::NotFound)
    );
    c.write_file("a/b/c/note.txt", 0o644, b"relative to the workdir")
        .await
        .unwrap();
    let names: Vec<_> = c
        .list_dir("/scratch/a/b/c")
        .await
        .unwrap()
        .into_iter()
        .map(|e| text(&e.name))
        .collect();
    assert_eq!(names, ["note.txt"]);
    c.rename("/scratch/a/b/c/note.txt", "/scratch/moved.txt")
        .await
        .unwrap();
    assert_eq!(
        c.read_file("/scratch/moved.txt").await.unwrap(),
        b"relative to the workdir"
    );
    assert_eq!(
        c.remove("/scratch/a", false)
            .await
            .unwrap_err()
            .remote_kind(),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    c.remove("/scratch/a", true).await.unwrap();
    assert_eq!(
        c.stat("/scratch/a").await.unwrap_err().remote_kind(),
        Some(ErrorKind::NotFound)
    );
    sb.ok("ln -s /etc/passwd /scratch/link; mkfifo /scratch/fifo")
        .await;
    let link = c.stat("/scratch/link").await.unwrap();
    assert_eq!(link.kind, FileKind::Symlink);
    assert_eq!(link.link_target.as_deref(), Some(&b"/etc/passwd"[..]));
    // A FIFO is refused instead of blocking the reader forever.
    assert_eq!(
        c.read_file("/scratch/fifo")
            .await
            .unwrap_err()
            .remote_kind(),
        Some(ErrorKind::Unsupported)
    );
    // The image is read-only, whoever asks.
    assert_eq!(
        c.write_file("/usr/evil", 0o644, b"x")
            .await
            .unwrap_err()
            .remote_kind(),
        Some(ErrorKind::PermissionDenied)
    );
}

async fn input_is_read_only_and_output_is_writable(tier: Tier) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Writable for anyone on the host, so only the read-only bind can stop
    // the write (gVisor checks permission bits first).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(dir.path().join("data.csv"), "a,b\n1,2\n").unwrap();
    let spec = SandboxSpec {
        input_dir: Some(dir.path().to_string_lossy().into_owned()),
        ..Default::default()
    };
    let sb = Sb::on(tier, spec).await;
    assert_eq!(sb.ok("cat /input/data.csv").await, "a,b\n1,2\n");
    let w = sb.sh("echo x > /input/new").await;
    assert_ne!(w.status.code, Some(0));
    assert!(text(&w.stderr).contains("Read-only file system"), "{w:?}");
    sb.ok("echo result > /output/r.txt").await;
    assert!(!dir.path().join("new").exists());
}

async fn cpu_limit_throttles(tier: Tier) {
    let spec = SandboxSpec {
        limits: warden_spec::Limits {
            cpu_millicores: Some(250),
            ..Default::default()
        },
        ..Default::default()
    };
    let sb = Sb::on(tier, spec).await;
    let t = Instant::now();
    sb.ok("timeout 2 sh -c 'while :; do :; done' || true").await;
    let wall = t.elapsed().as_secs_f64();
    let cpu = sb.sandbox.as_ref().unwrap().stats().unwrap().cpu_usage_ns as f64 / 1e9;
    // A quarter of a CPU over ~2 s is ~0.5 s; unthrottled it would be ~2 s.
    assert!(
        cpu < wall * 0.5,
        "used {cpu:.2}s of CPU in {wall:.2}s under a 0.25 CPU limit"
    );
    assert!(cpu > 0.1, "the loop did not run ({cpu:.2}s)");
}

// Directory watches (the scenarios are shared with the gVisor suite).

async fn watch_reports_kinds_and_names(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    watch::events_and_names(&sb).await;
    watch::recursive_watch(&sb).await;
}

async fn watch_cancel_refusals_and_limits(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    watch::cancel_ends_with_done(&sb).await;
    watch::refusals(&sb).await;
    watch::per_sandbox_limit(&sb).await;
    watch::removed_directory_ends_the_stream(&sb).await;
}

/// Watches leave nothing behind in the init: far more start-and-cancel
/// cycles than the sandbox user's 128 inotify instances would allow if any
/// descriptor leaked, half of them cancelled by dropping the `Watch`.
async fn watches_do_not_leak(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    sb.ok("mkdir -p /scratch/z/a/b").await;
    for i in 0..300 {
        let w = sb.client.watch("/scratch/z", true).await.unwrap();
        if i % 2 == 0 {
            w.cancel().await;
        } else {
            drop(w);
        }
    }
    let mut w = sb.client.watch("/scratch/z", true).await.unwrap();
    sb.ok("touch /scratch/z/a/b/last").await;
    watch::collect_until(&mut w, (FsEventKind::Create, "a/b/last"), Duration::ZERO).await;
}

/// A command started with `pty` runs on a terminal of that size (its
/// stdin, stdout and stderr, its controlling terminal); typed input
/// reaches it, and so does a resize. Control: a command without one has no
/// terminal.
async fn commands_on_a_terminal(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    let size = |cols, rows| Some(warden_protocol::PtySize { cols, rows });
    let mut req =
        ExecRequest::shell("tty; stty size; test -t 0 && test -t 2 && echo all; echo $TERM");
    req.pty = size(100, 30);
    let out = sb.client.exec_collect(req).await.unwrap();
    let got = text(&out.stdout);
    assert!(got.starts_with("/dev/pts/"), "{tier:?}: {got:?}");
    assert!(
        got.ends_with("30 100\r\nall\r\nxterm-256color\r\n"),
        "{tier:?}: {got:?}"
    );
    assert!(out.stderr.is_empty(), "a terminal has one output");
    let plain = sb.sh("tty; test -t 1 || echo none").await;
    assert_eq!(text(&plain.stdout), "not a tty\nnone\n", "{tier:?}");

    // Interactive: the shell waits for a line, is resized meanwhile, and
    // then sees the new size (and the line, echoed by the terminal too).
    let mut req = ExecRequest::shell("echo ready; read line; stty size; echo got $line");
    req.pty = size(80, 24);
    let pid = sb.client.spawn(req).await.unwrap();
    let mut s = sb
        .client
        .stream(Request::Attach { pid, replay: true })
        .unwrap();
    let mut out = Vec::new();
    while !text(&out).contains("ready") {
        match s.next().await.unwrap() {
            Some(Response::Stdout(d)) => out.extend(d),
            other => panic!("{tier:?}: {other:?}"),
        }
    }
    sb.client
        .resize(
            pid,
            warden_protocol::PtySize {
                cols: 120,
                rows: 40,
            },
        )
        .await
        .unwrap();
    sb.client.stdin(pid, b"typed\n").await.unwrap();
    let status = loop {
        match s.next().await.unwrap() {
            Some(Response::Stdout(d)) => out.extend(d),
            Some(Response::Exited(st)) => break st,
            other => panic!("{tier:?}: {other:?}"),
        }
    };
    let got = text(&out);
    assert_eq!(status.code, Some(0), "{tier:?}: {got:?}");
    assert!(
        got.ends_with("typed\r\n40 120\r\ngot typed\r\n"),
        "{tier:?}: {got:?}"
    );
    // The resize of a process without a terminal is refused, clearly.
    let bare = sb
        .client
        .spawn(ExecRequest::shell("sleep 30"))
        .await
        .unwrap();
    let err = sb
        .client
        .resize(bare, warden_protocol::PtySize { cols: 1, rows: 1 })
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::BadRequest), "{err}");
}

async fn files_passed_to_the_init(tier: Tier) {
    passing::files_passed_to_the_init(&Sb::default_on(tier).await).await;
}

async fn files_read_through_a_pipe(tier: Tier) {
    passing::files_read_through_a_pipe(&Sb::default_on(tier).await).await;
}

async fn batched_path_operations(tier: Tier) {
    batch::batched_path_operations(&Sb::default_on(tier).await).await;
}

async fn batches_are_bounded(tier: Tier) {
    batch::batches_are_bounded(&Sb::default_on(tier).await).await;
}

async fn an_unread_watch_overflows(tier: Tier) {
    let sb = Sb::default_on(tier).await;
    watch::unread_watch_overflows(&sb).await;
}

both_tiers!(
    exit_codes_and_signals,
    per_command_timeout_kills_the_whole_group,
    output_streams_before_the_command_ends,
    stdin_is_streamed_and_closable,
    a_hundred_megabytes_of_stdout_arrive_intact,
    background_processes_outlive_execs_and_can_be_attached,
    sessions_carry_cwd_and_env,
    file_operations,
    files_passed_to_the_init,
    files_read_through_a_pipe,
    batched_path_operations,
    batches_are_bounded,
    input_is_read_only_and_output_is_writable,
    cpu_limit_throttles,
    watch_reports_kinds_and_names,
    watch_cancel_refusals_and_limits,
    watches_do_not_leak,
    an_unread_watch_overflows,
    commands_on_a_terminal,
);

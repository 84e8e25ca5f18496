//! `warden run` end to end, as a user runs it: the real binary, real
//! sandboxes, exit statuses, streaming, export, image directories, and
//! recovery after the warden process itself is killed.

mod common;

use common::warden_bin;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn warden(args: &[&str]) -> Output {
    Command::new(warden_bin())
        .arg("run")
        .args(args)
        .env("WARDEN_STATE_DIR", common::STATE_DIR)
        .env("WARDEN_CGROUP_PARENT", common::CGROUP_PARENT)
        .stdin(Stdio::null())
        .output()
        .expect("run warden")
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exit_statuses_follow_the_conventions() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--", "sh", "-c", "exit 42"], 42, ""),
        (&["--", "sh", "-c", "kill -9 $$"], 137, ""),
        (
            &["--timeout", "1s", "--", "sleep", "30"],
            124,
            "timed out after 1s",
        ),
        (&["--", "no-such-program"], 127, "command not found"),
        (&["--", "/etc/passwd"], 126, "cannot execute"),
        (&["--memory", "lots", "--", "true"], 125, "invalid size"),
        (&["--input", "/nonexistent", "--", "true"], 125, "--input"),
    ];
    for (args, code, msg) in cases {
        let out = warden(args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {out:?}");
        let err = s(&out.stderr);
        assert!(err.contains(msg), "{args:?}: stderr {err:?}");
        if *code >= 124 && *code <= 127 {
            assert_eq!(err.lines().count(), 1, "{args:?}: one line please: {err:?}");
        }
    }
}

#[test]
fn output_streams_through_while_the_command_runs() {
    let mut child = Command::new(warden_bin())
        .args(["run", "--", "sh", "-c", "echo ready; sleep 3; echo done"])
        .env("WARDEN_STATE_DIR", common::STATE_DIR)
        .env("WARDEN_CGROUP_PARENT", common::CGROUP_PARENT)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "first line was held back"
    );
    assert_eq!(lines.next().unwrap().unwrap(), "done");
    assert!(child.wait().unwrap().success());
}

#[test]
fn input_env_workdir_and_export() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("in.txt"), "from the host\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("out");
    let script = "cat /input/in.txt > /output/copy.txt; pwd > /output/where; \
                  mkdir -p /output/sub/deeper; echo \"$GREETING\" > /output/sub/deeper/g; \
                  ln -s /etc/passwd /output/link; echo visible";
    let out = warden(&[
        "--input",
        input.path().to_str().unwrap(),
        "--output",
        dest.to_str().unwrap(),
        "--env",
        "GREETING=hi there",
        "--workdir",
        "/tmp",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(s(&out.stdout), "visible\n");
    let read = |p: &str| std::fs::read_to_string(dest.join(p)).unwrap();
    assert_eq!(read("copy.txt"), "from the host\n");
    assert_eq!(read("where"), "/tmp\n");
    assert_eq!(read("sub/deeper/g"), "hi there\n");
    assert!(std::fs::symlink_metadata(dest.join("link")).is_err());
    assert!(
        s(&out.stderr).contains("symlink (never followed)"),
        "{out:?}"
    );
}

#[test]
fn stdin_is_forwarded_with_dash_i() {
    use std::io::Write;
    let mut child = Command::new(warden_bin())
        .args(["run", "-i", "--", "sh", "-c", "wc -l"])
        .env("WARDEN_STATE_DIR", common::STATE_DIR)
        .env("WARDEN_CGROUP_PARENT", common::CGROUP_PARENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\nb\nc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(s(&out.stdout).trim(), "3");
}

/// A tiny root filesystem: dash and the libraries it needs, hard-linked
/// from the host (same filesystem), plus an /etc of its own.
fn make_image(root: &Path) {
    let ldd = Command::new("ldd").arg("/usr/bin/dash").output().unwrap();
    let mut files = vec!["/usr/bin/dash".to_string()];
    for line in s(&ldd.stdout).lines() {
        if let Some(p) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(p.to_string());
        }
    }
    for f in files {
        let real = std::fs::canonicalize(&f).unwrap();
        for p in [Path::new(&f).to_path_buf(), real.clone()] {
            let dst = root.join(p.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if !dst.exists() && std::fs::hard_link(&real, &dst).is_err() {
                std::fs::copy(&real, &dst).unwrap();
            }
        }
    }
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=warden-test-image\n").unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/:/bin/false\n").unwrap();
    std::fs::create_dir_all(root.join("lib64")).ok();
}

#[test]
fn an_image_directory_is_the_root_filesystem() {
    let img = tempfile::tempdir().unwrap();
    make_image(img.path());
    let out = warden(&[
        "--image",
        img.path().to_str().unwrap(),
        "--",
        "/bin/dash",
        "-c",
        // Builtins only: the image has nothing but dash.
        "while read -r l; do echo \"$l\"; done < /etc/os-release; \
         while IFS=: read -r n rest; do [ \"$n\" = sandbox ] && echo warden-passwd; done < /etc/passwd; \
         test -e /usr/bin/python3 && echo host-usr-visible; \
         { echo x > /usr/x; } 2>/dev/null || echo image-read-only",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        s(&out.stdout),
        "ID=warden-test-image\nwarden-passwd\nimage-read-only\n",
        "{out:?}"
    );
}

#[test]
fn a_killed_warden_leaves_nothing_running_and_the_next_start_reaps_it() {
    // Its own state dir and cgroup parent, so no other test's sandboxes are
    // counted.
    let state = "/run/warden-test-crash";
    let parent = "warden-test-crash";
    let mut child = Command::new(warden_bin())
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "setsid sleep 600 & echo up; sleep 600",
        ])
        .env("WARDEN_STATE_DIR", state)
        .env("WARDEN_CGROUP_PARENT", parent)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "up");
    let cg = Path::new("/sys/fs/cgroup/pids").join(parent).join("slot-0");
    assert!(cg.exists(), "sandbox cgroup {cg:?} missing while running");
    // SIGKILL: no destructor runs in the warden process.
    child.kill().unwrap();
    child.wait().unwrap();
    // The init sees its control channel close and takes the sandbox down.
    let t = Instant::now();
    loop {
        let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "sandbox processes outlived warden: {procs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The empty cgroup is the only leftover; the next start reaps it.
    let out = Command::new(warden_bin())
        .args(["run", "--", "true"])
        .env("WARDEN_STATE_DIR", state)
        .env("WARDEN_CGROUP_PARENT", parent)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for ctrl in ["pids", "memory", "cpu", "freezer"] {
        let dir = Path::new("/sys/fs/cgroup").join(ctrl).join(parent);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.file_name())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{ctrl}: leftover cgroups {left:?}");
        let _ = std::fs::remove_dir(&dir);
    }
}

#[test]
fn ctrl_c_stops_the_command_exports_and_cleans_up() {
    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("out");
    let mut child = Command::new(warden_bin())
        .args(["run", "--output", dest.to_str().unwrap(), "--"])
        .args(["sh", "-c", "echo partial > /output/p; echo up; sleep 600"])
        .env("WARDEN_STATE_DIR", common::STATE_DIR)
        .env("WARDEN_CGROUP_PARENT", common::CGROUP_PARENT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "up");
    let t = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(s(&out.stderr).contains("interrupted"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dest.join("p")).unwrap(),
        "partial\n"
    );
}

/// A one-response-per-connection HTTP server on the host's loopback.
fn tiny_http_server(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn allow_host_opens_the_named_host_and_nothing_else() {
    let port = tiny_http_server("hi-from-host\n");
    let map = format!("allowed.test=127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("egress.jsonl");
    let probe = "curl -sS -f http://allowed.test/ && \
                 curl -s -o /dev/null -w '%{http_code}' http://other.test/";
    let out = warden(&[
        "--allow-host",
        "allowed.test",
        "--resolve",
        &map,
        "--egress-log",
        log.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        probe,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(s(&out.stdout), "hi-from-host\n403");
    assert!(
        s(&out.stderr)
            .contains("warden: egress denied: GET other.test:80 (no rule allows other.test:80)"),
        "{}",
        s(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "allowed");
    assert_eq!(lines[0]["rule"], "allowed.test");
    assert_eq!(lines[0]["addr"], format!("127.0.0.1:{port}"));
    assert_eq!(lines[1]["outcome"], "denied");
    assert_eq!(lines[1]["reason"], "no_rule");

    // Control: without --allow-host there is no proxy and no way out.
    let out = warden(&["--", "curl", "-sS", "http://allowed.test/"]);
    assert_ne!(out.status.code(), Some(0));
    let out = warden(&["--resolve", &map, "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(s(&out.stderr).contains("--resolve only applies with --allow-host"));
    let out = warden(&["--allow-host", "10.0.0.1", "--", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", s(&out.stderr));
}

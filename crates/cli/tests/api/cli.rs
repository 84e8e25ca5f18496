//! The `warden` client commands against a real server, as scripts use them.

use crate::harness::*;
use serde_json::Value;
use std::process::{Command, Output};

pub fn warden(server: &Server, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(warden_bin());
    cmd.args(args)
        .env("WARDEN_URL", &server.url)
        .env("WARDEN_ADMIN_TOKEN", ADMIN)
        .env_remove("WARDEN_API_KEY");
    if let Some(k) = key {
        cmd.env("WARDEN_API_KEY", k);
    }
    cmd.output().expect("run warden")
}

pub fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "status {:?}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

#[test]
fn scripts_can_drive_the_whole_flow() {
    let server = Server::start();
    let t = json_of(&warden(
        &server,
        None,
        &[
            "tenant",
            "create",
            "scripted",
            "--max-cpus",
            "3",
            "--max-pids",
            "700",
            "--json",
        ],
    ));
    assert_eq!(t["quotas"]["max_cpus"], 3, "{t}");
    assert_eq!(t["quotas"]["max_pids"], 700, "{t}");
    let tid = t["id"].as_str().unwrap();
    let k = json_of(&warden(
        &server,
        None,
        &["key", "create", "--tenant", tid, "--json"],
    ));
    let key = k["key"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("numbers.csv");
    let data = "n,sq\n".to_string()
        + &(0..5000)
            .map(|i| format!("{i},{}\n", i * i))
            .collect::<String>();
    std::fs::write(&path, &data).unwrap();
    let f = json_of(&warden(
        &server,
        Some(key),
        &["file", "upload", path.to_str().unwrap(), "--json"],
    ));
    let fid = f["id"].as_str().unwrap();
    assert_eq!(f["content_type"], "text/csv");
    // Download round trip, to a file.
    let back = dir.path().join("back.csv");
    let out = warden(
        &server,
        Some(key),
        &["file", "download", fid, "-o", back.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), data);
    // A refused download leaves nothing behind.
    let missing = dir.path().join("missing.csv");
    let out = warden(
        &server,
        Some(key),
        &[
            "file",
            "download",
            "file_aaaaaaaaaaaaaaaaaaaa",
            "-o",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404 not_found"));
    assert!(!missing.exists());
    let sb = json_of(&warden(
        &server,
        Some(key),
        &[
            "sandbox", "create", "--file", fid, "--memory", "128M", "--json",
        ],
    ));
    let sid = sb["id"].as_str().unwrap();
    // exec streams and exits with the command's status.
    let out = warden(
        &server,
        Some(key),
        &[
            "exec",
            sid,
            "--",
            "sh",
            "-c",
            "wc -l < /input/numbers.csv; echo oops >&2; exit 7",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5001\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = warden(&server, Some(key), &["exec", sid, "--", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127));
    let out = warden(
        &server,
        Some(key),
        &["exec", sid, "--timeout", "1s", "--", "sleep", "5"],
    );
    assert_eq!(out.status.code(), Some(124));
    let out = warden(
        &server,
        Some(key),
        &["exec", sid, "--shell", "--", "kill", "-TERM", "$$"],
    );
    assert_eq!(out.status.code(), Some(128 + 15));
    let list = json_of(&warden(
        &server,
        Some(key),
        &["sandbox", "list", "--state", "running", "--json"],
    ));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(warden(&server, Some(key), &["sandbox", "delete", sid])
        .status
        .success());
    let audit = json_of(&warden(&server, Some(key), &["audit", "list", "--json"]));
    assert!(audit["items"].as_array().unwrap().len() >= 3, "{audit}");
    let usage = json_of(&warden(&server, Some(key), &["usage", "--json"]));
    assert_eq!(usage["sandboxes"], 1);
    // Wrong key: one line, status 125.
    let out = warden(&server, Some("wk_nope"), &["file", "list"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("warden: ") && err.contains("401"), "{err}");
    let out = warden(
        &server,
        Some(key),
        &[
            "audit",
            "verify",
            "--data-dir",
            server.data_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn audit_verify_finds_tampering() {
    let mut server = Server::start();
    let t = json_of(&warden(
        &server,
        None,
        &["tenant", "create", "tampered", "--json"],
    ));
    let tid = t["id"].as_str().unwrap().to_string();
    json_of(&warden(
        &server,
        None,
        &["key", "create", "--tenant", &tid, "--json"],
    ));
    json_of(&warden(
        &server,
        None,
        &["tenant", "disable", &tid, "--json"],
    ));
    server.stop();
    let db = server.data_dir.join("warden.db");
    let run_verify = || {
        Command::new(warden_bin())
            .args(["audit", "verify", "--data-dir"])
            .arg(&server.data_dir)
            .output()
            .unwrap()
    };
    let ok = run_verify();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // Rewrite history: the disable becomes an enable.
    let st = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"update audit set action='tenant.enable' where action='tenant.disable'\"); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(st.success());
    let bad = run_verify();
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{tid}: BROKEN")) && text.contains("seq 3"),
        "{text}"
    );
}

//! Integrity across faults and tampering: the audit chains detect
//! truncation, rewriting and deletion made directly in the database file,
//! and a full data disk answers 507 (and `/readyz` not ready) without
//! leaving the database unusable once space is back.

use crate::cli::{json_of, warden};
use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_verify(data_dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(warden_bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs a Python snippet on the database file (`db` is the connection),
/// committing after it: an edit made under Warden's back.
fn edit_db(db: &Path, code: &str) {
    let script = format!(
        "import sqlite3, sys, hashlib, struct\ndb = sqlite3.connect(sys.argv[1])\n{code}\ndb.commit()\n"
    );
    let st = Command::new("python3")
        .args(["-c", &script])
        .arg(db)
        .status()
        .unwrap();
    assert!(st.success(), "editing the database failed");
}

/// Recomputes a tenant's whole chain after changing one entry, with the
/// only algorithm an attacker without the key has (the unkeyed sha256
/// encoding of `warden-audit-v1`), so every entry's hash recomputes.
const REWRITE: &str = r#"
def s(x):
    b = x.encode()
    return struct.pack('>Q', len(b)) + b
def h(prev, t, seq, actor, action, target, outcome, at):
    m = s('warden-audit-v1') + s(prev) + s(t) + struct.pack('>q', seq) + s(actor) + s(action) + s(target) + s(outcome) + struct.pack('>q', at)
    return hashlib.sha256(m).hexdigest()
t = TENANT
db.execute("UPDATE audit SET action = 'tenant.enable' WHERE tenant_id = ? AND action = 'tenant.disable'", (t,))
prev = '0' * 64
for (seq, actor, action, target, outcome, at) in db.execute("SELECT seq, actor, action, target, outcome, at FROM audit WHERE tenant_id = ? ORDER BY seq", (t,)).fetchall():
    hh = h(prev, t, seq, actor, action, target, outcome, at)
    db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE tenant_id = ? AND seq = ?", (prev, hh, t, seq))
    prev = hh
"#;

/// Three tenants with the same history; one chain is cut short, one
/// rewritten with every hash recomputed, one deleted. `warden audit
/// verify` names each, for the right reason, and (the control) passes
/// them all before the edits. Before keyed, anchored chains all three
/// edits verified as "ok".
#[test]
fn audit_truncation_rewrite_and_deletion_are_detected() {
    let mut server = Server::start();
    let mut tenants = Vec::new();
    for name in ["truncated", "rewritten", "deleted", "untouched"] {
        let t = json_of(&warden(
            &server,
            None,
            &["tenant", "create", name, "--json"],
        ));
        let tid = t["id"].as_str().unwrap().to_string();
        for args in [
            vec!["key", "create", "--tenant", &tid, "--json"],
            vec!["tenant", "disable", &tid, "--json"],
            vec!["tenant", "enable", &tid, "--json"],
        ] {
            json_of(&warden(&server, None, &args));
        }
        tenants.push(tid);
    }
    server.stop();
    let (code, text) = run_verify(&server.data_dir);
    assert_eq!(
        code,
        Some(0),
        "the control: untouched chains verify\n{text}"
    );
    for t in &tenants {
        assert!(text.contains(&format!("{t}: ok (4 entries)")), "{text}");
    }
    let key = std::fs::metadata(server.data_dir.join("audit.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        key.permissions().mode() & 0o777,
        0o600,
        "the key file is private"
    );

    let db = server.data_dir.join("warden.db");
    let [truncated, rewritten, deleted, untouched] = &tenants[..] else {
        unreachable!()
    };
    edit_db(
        &db,
        &format!("db.execute(\"DELETE FROM audit WHERE tenant_id = '{truncated}' AND seq >= 3\")"),
    );
    edit_db(&db, &REWRITE.replace("TENANT", &format!("'{rewritten}'")));
    edit_db(
        &db,
        &format!("db.execute(\"DELETE FROM audit WHERE tenant_id = '{deleted}'\")"),
    );
    let (code, text) = run_verify(&server.data_dir);
    assert_eq!(code, Some(1), "{text}");
    let line = |t: &str| {
        text.lines()
            .find(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("no line for {t}:\n{text}"))
            .to_string()
    };
    let l = line(truncated);
    assert!(l.contains("BROKEN") && l.contains("truncated"), "{l}");
    let l = line(rewritten);
    assert!(l.contains("BROKEN") && l.contains("rewritten"), "{l}");
    let l = line(deleted);
    assert!(l.contains("BROKEN") && l.contains("deleted"), "{l}");
    let l = line(untouched);
    assert!(l.contains("ok (4 entries)"), "{l}");
}

/// A tmpfs of its own for the data directory, unmounted (lazily, so a
/// process still holding a file cannot keep it) when dropped, whatever the
/// test did.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs");
        SmallDisk { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Fills the filesystem to the last byte; returns the filler's path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // The rest, byte by byte, up to the last free one.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The data directory on a full disk: writes answer 507 `storage_full`
/// (never an opaque 500), `/readyz` says not ready. Once space is back,
/// every create works and is audited, and the chains verify: no database
/// connection was left unusable by the failed transactions (before: creates
/// answered 201 with none of their audit entries written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_the_database_recovers() {
    // Declared first so it is dropped last: the server stops before its
    // disk goes away.
    let disk = SmallDisk::mount("24m");
    let data_dir = disk.path().join("data");
    let mut server = Server::start_in(&data_dir, &RuntimeDirs::shared(), &[]);
    let admin = server.admin();
    let (_, a) = admin.tenant("before", None).await;
    assert_eq!(admin.get("/readyz").await.status, 200);

    let filler = disk.fill();
    let mut full = 0;
    for i in 0..30 {
        let r = admin
            .post(
                "/v1/tenants",
                json!({"name": format!("during-{i}-{}", "x".repeat(100))}),
            )
            .await;
        match r.status.as_u16() {
            201 => {}
            507 => {
                assert_eq!(r.code(), "storage_full", "{}", r.text);
                full += 1;
            }
            _ => panic!("a write on a full disk: {} {}", r.status, r.text),
        }
        let r = a
            .send(
                a.req(Method::POST, &format!("/v1/files?name=f{i}.bin"))
                    .body(vec![b'f'; 256 << 10]),
            )
            .await;
        assert_eq!(
            r.status.as_u16(),
            507,
            "an upload on a full disk: {}",
            r.text
        );
        assert_eq!(r.code(), "storage_full");
        full += 1;
    }
    assert!(full >= 30);
    let r = admin.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "storage full", "{}", r.text);

    std::fs::remove_file(&filler).unwrap();
    let r = admin.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Every create works and writes its audit entries (the tenant's chain:
    // tenant.create, key.create).
    for i in 0..20 {
        let (_, t) = admin.tenant(&format!("after-{i}"), None).await;
        let log = t.get("/v1/audit").await;
        assert_eq!(log.status, 200, "{}", log.text);
        let actions: Vec<_> = log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(actions, ["tenant.create", "key.create"], "{}", log.text);
        t.upload("ok.txt", b"space is back").await;
    }
    a.upload("again.txt", b"space is back").await;
    server.stop();
    let (code, text) = run_verify(&data_dir);
    assert_eq!(code, Some(0), "{text}");
}

//! The server's own directories, as a careful operator sets them up: the
//! data directory (database, every tenant's files) and the state directory
//! kept to root (mode 0700). Sandboxes run as the slot's host uid, which
//! cannot search such a directory; they must work all the same, on both
//! tiers, and `warden serve` makes a new data directory 0700 itself.

use crate::harness::*;
use serde_json::json;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_with_inputs_work_under_root_only_directories() {
    // Everything under a directory only root may search: the data
    // directory inside it is left for the server to make, the state
    // directory made 0700 by us (the runtime keeps an existing one's mode).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = tmp.path().join("data");
    let dirs = RuntimeDirs::private();
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dirs.state_dir)
        .unwrap();
    let server = Server::start_in(&data, &dirs, &[]);
    assert_eq!(mode(&data), 0o700, "warden serve made its data directory");
    assert_eq!(mode(std::path::Path::new(&dirs.state_dir)), 0o700);

    // The control: no other host user may enter those directories (so
    // the sandboxes below did not get in by "others" permissions).
    let sandboxes = data.join("sandboxes");
    let other = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"])
        .arg(&sandboxes)
        .output()
        .unwrap();
    assert!(
        !other.status.success()
            && String::from_utf8_lossy(&other.stderr).contains("Permission denied"),
        "nobody listed {}: {other:?}",
        sandboxes.display()
    );

    let (_, a) = server.admin().tenant("modes", None).await;
    let f = a.upload("rows.csv", b"a,1\nb,2\n").await;
    let fid = f["id"].as_str().unwrap().to_string();
    for isolation in ["native", "gvisor"] {
        let r = a
            .post(
                "/v1/sandboxes",
                json!({"isolation": isolation, "files": [fid]}),
            )
            .await;
        assert_eq!(
            r.status,
            201,
            "{isolation}: {}\n{}",
            r.text,
            server.log.lock().unwrap()
        );
        let sb = r.body["id"].as_str().unwrap().to_string();
        assert_eq!(a.ok(&sb, "cat /input/rows.csv").await, "a,1\nb,2\n");
        let r = a.delete(&format!("/v1/sandboxes/{sb}")).await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    assert!(cgroups_left(&server).is_empty(), "sandbox groups left");
}

//! Isolation tiers through the API: `isolation: "gvisor"` on a sandbox and
//! on a review job runs under gVisor's kernel (its /proc/version, not the
//! host's; the native control sees the host's), the tier list, and clear
//! refusals for an unknown tier and for one this server does not offer.

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn host_version() -> String {
    std::fs::read_to_string("/proc/version").expect("/proc/version")
}

/// Processes whose command line names `needle` (e.g. a server's private
/// state directory, which every runsc it starts carries in `--root`).
fn processes_naming(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && !cmd.contains("warden serve") {
                out.push(cmd);
            }
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn tier<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no tier {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_sandbox_and_review_over_the_api() {
    let dirs = RuntimeDirs::private();
    let state = dirs.state_dir.clone();
    let server = Server::start_with(dirs);
    let (_, a) = server.admin().tenant("tiers", None).await;

    let list = a.get("/v1/isolation").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(tier(&list.body, "native")["available"], true);
    let gv = tier(&list.body, "gvisor");
    assert_eq!(
        gv["available"], true,
        "runsc is installed by make test: {gv}"
    );
    assert!(gv["detail"].as_str().unwrap().contains("platform"), "{gv}");
    let report = "warden: isolation tiers: native (available";
    let log = server.log_with(report, Duration::from_secs(10)).await;
    assert!(log.contains(report), "no start-up tier report:\n{log}");

    let f = a.upload("rows.csv", b"a,1\nb,2\nc,3\n").await;
    let fid = f["id"].as_str().unwrap().to_string();
    let gv = a
        .sandbox(json!({"isolation": "gvisor", "files": [fid]}))
        .await;
    let native = a.sandbox(json!({"files": [fid]})).await;
    let shown = a.get(&format!("/v1/sandboxes/{gv}")).await;
    assert_eq!(shown.body["isolation"], "gvisor", "{}", shown.text);
    let shown = a.get(&format!("/v1/sandboxes/{native}")).await;
    assert_eq!(shown.body["isolation"], "native", "{}", shown.text);

    // The probe only gVisor passes; the native control sees the host kernel.
    let inside = a.ok(&gv, "cat /proc/version").await;
    assert_ne!(
        inside.trim(),
        host_version().trim(),
        "gVisor showed the host's kernel"
    );
    assert_eq!(
        a.ok(&native, "cat /proc/version").await.trim(),
        host_version().trim()
    );
    // The same features above the runtime: /input, exec, files API.
    assert_eq!(a.ok(&gv, "wc -l < /input/rows.csv").await.trim(), "3");
    let w = a
        .send(
            a.req(
                Method::PUT,
                &format!("/v1/sandboxes/{gv}/files?path=/scratch/x.txt"),
            )
            .body("written through the API"),
        )
        .await;
    assert!(w.status.is_success(), "{}", w.text);
    assert_eq!(
        a.ok(&gv, "cat /scratch/x.txt").await,
        "written through the API"
    );

    for id in [&gv, &native] {
        let d = a.delete(&format!("/v1/sandboxes/{id}")).await;
        assert!(d.status.is_success(), "{}", d.text);
    }
    assert_eq!(cgroups_left(&server), Vec::<String>::new());
    let gdir = Path::new(&state).join("gvisor");
    assert_eq!(entries(&gdir.join("bundles")), Vec::<String>::new());
    assert_eq!(processes_naming(&state), Vec::<String>::new());

    // A review job on gVisor: the command's view of the kernel lands in
    // its outputs.
    let id = submit(
        &a,
        json!({"isolation": "gvisor", "files": [fid],
               "shell": "cat /proc/version > /output/version; wc -l < /input/rows.csv > /output/n"}),
    )
    .await;
    let done = wait_done(&a, &id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["isolation"], "gvisor", "{done}");
    let out = |p: &'static str| {
        let a = a.clone();
        let id = id.clone();
        async move {
            let r = a
                .send(a.req(Method::GET, &format!("/v1/reviews/{id}/outputs/{p}")))
                .await;
            assert_eq!(r.status, 200, "{p}: {}", r.text);
            r.text
        }
    };
    assert_eq!(out("n").await.trim(), "3");
    assert_ne!(out("version").await.trim(), host_version().trim());
    assert_eq!(cgroups_left(&server), Vec::<String>::new());
    assert_eq!(processes_naming(&state), Vec::<String>::new());
}

/// With the pool of pre-started gVisor sandboxes on: a create after the
/// first is served by a sandbox booted ahead (its bundle is the one that
/// was waiting), gets its own environment and nothing of the sandbox
/// before; SIGTERM removes the waiting sandboxes with the live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_gvisor_sandboxes_and_a_clean_stop() {
    let dirs = RuntimeDirs::private();
    let state = dirs.state_dir.clone();
    let bundles = Path::new(&state).join("gvisor/bundles");
    let mut server = Server::start_env(
        dirs,
        &[
            ("WARDEN_GVISOR_PRESTART", "1"),
            ("WARDEN_LOG", "warn,warden_runtime::gvisor=info"),
        ],
    );
    let (_, a) = server.admin().tenant("pool", None).await;
    let first = a
        .sandbox(json!({"isolation": "gvisor", "env": {"SECRET": "one"}}))
        .await;
    assert_eq!(
        a.ok(&first, "echo $SECRET; echo x > /scratch/left-by-first")
            .await,
        "one\n"
    );
    let d = a.delete(&format!("/v1/sandboxes/{first}")).await;
    assert!(d.status.is_success(), "{}", d.text);
    // The first taught the pool its shape; one boots in the background and
    // joins the pool once warmed up (its bundle exists from the boot's start).
    let t = std::time::Instant::now();
    let waiting = loop {
        let now = entries(&bundles);
        let log = server.log.lock().unwrap().clone();
        if now.len() == 1
            && log.contains(&format!(
                "gVisor sandbox {} warmed up, waiting in the pool",
                now[0]
            ))
        {
            break now[0].clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no pooled sandbox: {now:?}\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let second = a
        .sandbox(json!({"isolation": "gvisor", "env": {"SECRET": "two"}}))
        .await;
    assert_eq!(
        a.ok(&second, "echo $SECRET; ls -A /scratch | wc -l").await,
        "two\n0\n"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.contains(&format!(
            "gVisor sandbox {waiting} handed out from the pool"
        )),
        "the second sandbox did not come from the pool:\n{log}"
    );
    // Stopped with a sandbox live and (after a moment) another waiting:
    // nothing of either is left.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop();
    let log = server.log.lock().unwrap().clone();
    assert_eq!(entries(&bundles), Vec::<String>::new(), "{log}");
    assert_eq!(processes_naming(&state), Vec::<String>::new());
    assert_eq!(cgroups_left(&server), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unavailable_tiers_are_refused() {
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_GVISOR", "off")]);
    let (_, a) = server.admin().tenant("no-gvisor", None).await;

    let m = refused(
        &a.post("/v1/sandboxes", json!({"isolation": "kvm"})).await,
        400,
        "bad_request",
    );
    assert!(m.contains("\"native\" or \"gvisor\""), "{m}");
    let m = refused(
        &a.post("/v1/sandboxes", json!({"isolation": "gvisor"}))
            .await,
        400,
        "isolation_unavailable",
    );
    assert!(m.contains("gvisor") && m.contains("turned off"), "{m}");
    let m = refused(
        &a.post(
            "/v1/reviews",
            json!({"isolation": "gvisor", "shell": "true"}),
        )
        .await,
        400,
        "isolation_unavailable",
    );
    assert!(m.contains("turned off"), "{m}");
    // Nothing was left half-made by the refusals.
    assert_eq!(cgroups_left(&server), Vec::<String>::new());
    let jobs = a.get("/v1/reviews").await;
    assert_eq!(jobs.body["items"], json!([]), "{}", jobs.text);
    // Control: the native tier (explicitly and by default) still works.
    let sb = a.sandbox(json!({"isolation": "native"})).await;
    assert_eq!(a.ok(&sb, "echo ok").await, "ok\n");
    let list = a.get("/v1/isolation").await;
    let gv = tier(&list.body, "gvisor");
    assert_eq!(gv["available"], false, "{gv}");
    assert!(
        gv["detail"].as_str().unwrap().contains("turned off"),
        "{gv}"
    );
    let audit = audited(&a, "sandbox.create").await;
    assert!(
        audit.iter().any(|(_, _, o)| o == "isolation_unavailable"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_runsc_is_reported_and_required_refuses_to_start() {
    // auto: the server starts, says why gVisor is missing, refuses it.
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_RUNSC", "/nonexistent/runsc")],
    );
    let (_, a) = server.admin().tenant("no-runsc", None).await;
    let m = refused(
        &a.post("/v1/sandboxes", json!({"isolation": "gvisor"}))
            .await,
        400,
        "isolation_unavailable",
    );
    assert!(m.contains("runsc not found"), "{m}");
    drop(server);

    // required: start-up fails, naming the reason.
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(warden_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("WARDEN_ADMIN_TOKEN", ADMIN)
        .env("WARDEN_STATE_DIR", STATE_DIR)
        .env("WARDEN_CGROUP_PARENT", "warden-api-required")
        .env("WARDEN_GVISOR", "required")
        .env("WARDEN_RUNSC", "/nonexistent/runsc")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // The native runtime made its (empty) parent groups before the check.
    for root in cgroup_roots() {
        let _ = std::fs::remove_dir(root.join("warden-api-required"));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without gVisor: {err}");
    assert!(
        err.contains("runsc not found") && err.contains("required"),
        "{err}"
    );
    assert!(!err.contains("listening on"), "{err}");
}

//! What still holds behind envd's front door: files stay inside the
//! sandbox, the command policy and secret masking apply to its processes,
//! and its state changes are audited without their content.

use crate::e2b_envd::{e2b_sandbox, end, start, stdout, Envd};
use crate::harness::*;
use crate::policy::put_policy;
use crate::secrets::{fresh_value, KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use warden_envd_wire::process::{self as p, process_event::Event};

/// Sandbox `id` (made through /v1) as envd reaches it: its access token
/// from E2B's control API.
async fn through_envd(a: &Api, id: &str) -> Envd {
    let info = a
        .send(
            a.http
                .get(format!("{}/sandboxes/{id}", a.base))
                .header("X-API-Key", &a.token),
        )
        .await;
    assert_eq!(info.status, 200, "{}", info.text);
    Envd {
        http: a.http.clone(),
        base: a.base.clone(),
        id: id.to_string(),
        token: info.body["envdAccessToken"].as_str().unwrap().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stay_inside_and_policy_and_masking_still_apply() {
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_SECRETS_KEY", KEY)]);
    let admin = server.admin();
    let (tid, a) = admin.tenant("careful", None).await;
    let secret = fresh_value("e2b");
    let r = a
        .post("/v1/secrets", json!({"name": "API_TOKEN", "value": secret}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // A sandbox made through /v1 with a secret, reached through envd.
    let id = a.sandbox(json!({"secrets": ["API_TOKEN"]})).await;
    let sb = through_envd(&a, &id).await;

    // The secret's value never comes back in a stream.
    let s = sb.run("echo \"token=$API_TOKEN\"").await;
    assert_eq!(stdout(&s), "token=***\n");

    // A symlink to /etc/passwd leads to the sandbox's own passwd, not the
    // host's (the host has accounts the sandbox's synthesised one lacks).
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let host_only = host_passwd
        .lines()
        .find(|l| !l.starts_with("root:") && !l.starts_with("sandbox:"))
        .expect("the host has another account")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    sb.run("ln -s /etc/passwd /scratch/link").await;
    let get = |path: &str| {
        sb.http
            .get(format!("{}/files", sb.base))
            .query(&[("path", path)])
            .header("E2b-Sandbox-Id", &sb.id)
            .header("X-Access-Token", &sb.token)
            .send()
    };
    let via_link = get("/scratch/link").await.unwrap();
    assert_eq!(via_link.status(), 200);
    let text = via_link.text().await.unwrap();
    assert!(text.contains("sandbox:"), "{text}");
    assert!(
        !text.contains(&format!("{host_only}:")),
        "host account leaked: {text}"
    );
    // Relative paths climb no higher than /.
    let shadow = get("../../../../etc/shadow").await.unwrap();
    assert_eq!(shadow.status(), 404, "the sandbox has no /etc/shadow");
    let missing = get("nope.txt").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], 404);

    // The tenant's command policy applies to E2B's Start too.
    let denied = put_policy(&admin, &tid, json!({"deny": ["touch *"]})).await;
    assert_eq!(denied.status, 200, "{}", denied.text);
    let s = sb.run("touch /scratch/marker").await;
    assert_eq!(s.end["error"]["code"], "permission_denied", "{}", s.end);
    assert!(s.events.is_empty(), "a denied command never starts");
    let check = sb
        .run("test -e /scratch/marker && echo there || echo absent")
        .await;
    assert_eq!(stdout(&check), "absent\n");
    let audit = audited(&a, "exec.denied").await;
    assert!(!audit.is_empty(), "the refusal is audited");

    // `[bash, SCRIPT, -c, LINE]` runs SCRIPT: the policy judges that, not
    // LINE (issue 15, item 16). The script would leave a marker.
    let s = sb
        .run("printf 'echo ran > /scratch/marker2\\n' > /scratch/evil.sh")
        .await;
    assert_eq!(end(&s).exit_code, 0, "{}", s.end);
    let allow = put_policy(&admin, &tid, json!({"allow": ["echo *"]})).await;
    assert_eq!(allow.status, 200, "{}", allow.text);
    let bash = |args: &[&str]| p::StartRequest {
        process: Some(p::ProcessConfig {
            cmd: "/bin/bash".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            envs: Default::default(),
            cwd: None,
        }),
        ..Default::default()
    };
    let control = sb
        .stream("/process.Process/Start", &bash(&["-c", "echo hi"]), None)
        .await;
    assert_eq!(stdout(&control), "hi\n", "{}", control.end);
    let smuggled = sb
        .stream(
            "/process.Process/Start",
            &bash(&["/scratch/evil.sh", "-c", "echo hi"]),
            None,
        )
        .await;
    assert_eq!(
        smuggled.end["error"]["code"], "permission_denied",
        "{}",
        smuggled.end
    );
    assert_eq!(get("/scratch/marker2").await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_through_envd_and_stdin_are_audited_without_content() {
    use warden_envd_wire::filesystem as f;
    let server = Server::start();
    let (_, a) = server.admin().tenant("audited-envd", None).await;
    let sb = e2b_sandbox(&a, json!({"templateID": "base"})).await;

    // Files made, moved and removed through envd: each one audited with
    // its paths (these were not audited at all).
    let _: f::MakeDirResponse = sb
        .unary(
            "/filesystem.Filesystem/MakeDir",
            &f::MakeDirRequest {
                path: "/tmp/made".into(),
            },
        )
        .await
        .unwrap();
    let _: f::MoveResponse = sb
        .unary(
            "/filesystem.Filesystem/Move",
            &f::MoveRequest {
                source: "/tmp/made".into(),
                destination: "/tmp/moved".into(),
            },
        )
        .await
        .unwrap();
    let _: f::RemoveResponse = sb
        .unary(
            "/filesystem.Filesystem/Remove",
            &f::RemoveRequest {
                path: "/tmp/moved".into(),
            },
        )
        .await
        .unwrap();
    // Removing what is already gone is done, as in E2B's envd.
    let _: f::RemoveResponse = sb
        .unary(
            "/filesystem.Filesystem/Remove",
            &f::RemoveRequest {
                path: "/tmp/moved".into(),
            },
        )
        .await
        .unwrap();
    // A refused change is audited as such.
    let refused: Result<f::RemoveResponse, _> = sb
        .unary(
            "/filesystem.Filesystem/Remove",
            &f::RemoveRequest {
                path: "/etc/hostname".into(),
            },
        )
        .await;
    assert_eq!(refused.unwrap_err().0, StatusCode::FORBIDDEN);
    let id = &sb.id;
    let actor = "e2b-envd".to_string();
    assert_eq!(
        audited(&a, "sandbox.mkdir").await,
        [(
            actor.clone(),
            format!("{id}:/tmp/made"),
            "ok (e2b)".to_string()
        )]
    );
    assert_eq!(
        audited(&a, "sandbox.file_move").await,
        [(
            actor.clone(),
            format!("{id}:/tmp/made -> /tmp/moved"),
            "ok (e2b)".to_string()
        )]
    );
    assert_eq!(
        audited(&a, "sandbox.file_remove").await,
        [
            (
                actor.clone(),
                format!("{id}:/tmp/moved"),
                "ok (e2b)".to_string()
            ),
            (
                actor.clone(),
                format!("{id}:/tmp/moved"),
                "ok (e2b)".to_string()
            ),
            (
                actor.clone(),
                format!("{id}:/etc/hostname"),
                "permission_denied (e2b)".to_string()
            ),
        ]
    );

    // Input fed to a process: its size is audited, never its bytes.
    let mut cat = start("cat > /tmp/got");
    cat.stdin = Some(true);
    let s = sb.stream("/process.Process/Start", &cat, Some(300)).await;
    let Some(Event::Start(st)) = s.events.first() else {
        panic!("no start event")
    };
    let pid = st.pid;
    let select = || {
        Some(p::ProcessSelector {
            selector: Some(p::process_selector::Selector::Pid(pid)),
        })
    };
    let _: p::SendInputResponse = sb
        .unary(
            "/process.Process/SendInput",
            &p::SendInputRequest {
                process: select(),
                input: Some(p::ProcessInput {
                    input: Some(p::process_input::Input::Stdin(b"swordfish\n".to_vec())),
                }),
            },
        )
        .await
        .unwrap();
    let _: p::CloseStdinResponse = sb
        .unary(
            "/process.Process/CloseStdin",
            &p::CloseStdinRequest { process: select() },
        )
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    while stdout(&sb.run("cat /tmp/got").await) != "swordfish\n" {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "input never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        audited(&a, "sandbox.stdin").await,
        [(
            actor.clone(),
            format!("{id}:{pid}"),
            "ok (10 bytes, e2b)".to_string()
        )]
    );
    assert_eq!(
        audited(&a, "sandbox.stdin_close").await,
        [(actor.clone(), format!("{id}:{pid}"), "ok (e2b)".to_string())]
    );

    // The same through the native API (a process with a stdin pipe: one
    // envd started; the native API closes the pipes it opens itself).
    let native = sb.id.clone();
    let mut cat = start("cat > /tmp/got2");
    cat.stdin = Some(true);
    let s = sb.stream("/process.Process/Start", &cat, Some(300)).await;
    let Some(Event::Start(st)) = s.events.first() else {
        panic!("no start event")
    };
    let npid = st.pid;
    let w = a
        .send(
            a.req(
                reqwest::Method::POST,
                &format!("/v1/sandboxes/{native}/processes/{npid}/stdin?close=true"),
            )
            .body("hunter2\n"),
        )
        .await;
    assert_eq!(w.status, 204, "{}", w.text);
    let done = a
        .post(
            &format!("/v1/sandboxes/{native}/processes/{npid}/wait"),
            json!({}),
        )
        .await;
    assert_eq!(done.body["exit_code"], 0, "{}", done.text);
    assert_eq!(a.ok(&native, "cat /tmp/got2").await, "hunter2\n");
    let entries = audited(&a, "sandbox.stdin").await;
    let (who, target, outcome) = &entries[1];
    assert!(who.starts_with("key_"), "{entries:?}");
    assert_eq!(
        (target.as_str(), outcome.as_str()),
        (
            format!("{native}:{npid}").as_str(),
            "ok (8 bytes, stdin closed)"
        ),
    );
    // No entry holds what was typed.
    let all = a.get("/v1/audit?limit=1000").await.text;
    assert!(!all.contains("swordfish") && !all.contains("hunter2"));
}

/// An upload refused before anything is written (an encoding envd does
/// not take, a place the sandbox's user cannot write) is read to its end
/// before the answer goes out, so a client still sending its 16 MiB reads
/// the refusal instead of a reset; the same body to a writable place is
/// written whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_answered_not_reset() {
    let server = Server::start_with(RuntimeDirs::shared());
    let (_, a) = server.admin().tenant("refused-upload", None).await;
    let id = a.sandbox(json!({})).await;
    let sb = through_envd(&a, &id).await;
    let body = vec![b'x'; 16 << 20];
    let post = |path: &str, encoding: &str| {
        sb.http
            .post(format!("{}/files", sb.base))
            .query(&[("path", path)])
            .header("E2b-Sandbox-Id", &sb.id)
            .header("X-Access-Token", &sb.token)
            .header("content-type", "application/octet-stream")
            .header("content-encoding", encoding)
            .body(body.clone())
            .send()
    };
    for (path, encoding, status, says) in [
        ("/scratch/br", "br", 400, "Content-Encoding"),
        ("/usr/refused", "identity", 403, "Read-only file system"),
    ] {
        let r = post(path, encoding)
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer read: {e}"));
        assert_eq!(r.status().as_u16(), status, "{path}");
        let v: Value = r.json().await.expect("the refusal's body");
        assert!(v["message"].as_str().unwrap_or("").contains(says), "{v}");
    }
    let r = post("/scratch/whole", "identity").await.expect("an answer");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        a.ok(&id, "stat -c %s /scratch/whole; ls /scratch").await,
        "16777216\nwhole\n"
    );
}

/// A deep listing is the server's memory: one ListDir gathers at most
/// 100,000 entries (and 64 MiB of them), and a tree with more is refused
/// with the reason, not listed whole. The same tree's parts are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_listing_is_bounded() {
    use warden_envd_wire::filesystem as f;
    let server = Server::start();
    let (_, a) = server.admin().tenant("deep-listing", None).await;
    // Room (inodes: one per 4 KiB of disk) for 11 directories of 10,000.
    let id = a
        .sandbox(json!({"limits": {"disk_mb": 1024, "memory_mb": 1024}}))
        .await;
    a.ok(
        &id,
        "python3 -c \"import os\nfor d in range(11):\n  os.mkdir(f'/scratch/d{d}')\n  \
         for i in range(10000): open(f'/scratch/d{d}/{i}', 'w').close()\"",
    )
    .await;
    let sb = through_envd(&a, &id).await;
    let list = |path: &str, depth: u32| {
        let req = f::ListDirRequest {
            path: path.into(),
            depth,
        };
        let sb = &sb;
        async move {
            sb.unary::<_, f::ListDirResponse>("/filesystem.Filesystem/ListDir", &req)
                .await
        }
    };
    let (status, body) = list("/scratch", 2).await.unwrap_err();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "resource_exhausted", "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("100000 entries"), "{msg}");
    // Controls: the top level, and one directory's 10,000.
    assert_eq!(list("/scratch", 1).await.unwrap().entries.len(), 11);
    assert_eq!(list("/scratch/d0", 1).await.unwrap().entries.len(), 10_000);
}

//! E2B's envd on a real server, spoken from Rust with our own protobuf
//! types: the binary protobuf codec (the SDKs use JSON, which their own
//! suites in `e2b_sdk.rs` cover), the Connect framing, and the attacks on
//! the front door — tokens, other sandboxes, paths, policy, secrets.

use crate::harness::*;
use crate::policy::put_policy;
use crate::secrets::{fresh_value, KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};
use warden_envd_wire::connect::{self, FLAG_END_STREAM};
use warden_envd_wire::process::{
    self as p, process_event::data_event::Output, process_event::Event,
};
use warden_envd_wire::prost::Message;

/// One sandbox seen through envd: its id and access token.
struct Envd {
    http: reqwest::Client,
    base: String,
    id: String,
    token: String,
}

/// Creates a sandbox through E2B's control API (`X-API-Key`).
async fn e2b_sandbox(a: &Api, body: Value) -> Envd {
    let r = a
        .send(
            a.http
                .post(format!("{}/sandboxes", a.base))
                .header("X-API-Key", &a.token)
                .json(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    Envd {
        http: a.http.clone(),
        base: a.base.clone(),
        id: r.body["sandboxID"].as_str().unwrap().to_string(),
        token: r.body["envdAccessToken"].as_str().unwrap().to_string(),
    }
}

/// The events of a server stream, and its end-of-stream JSON.
struct Streamed {
    events: Vec<Event>,
    end: Value,
}

impl Envd {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("E2b-Sandbox-Id", &self.id)
            .header("E2b-Sandbox-Port", "49983")
            .header("X-Access-Token", &self.token)
    }

    /// A unary call in binary protobuf.
    async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, (StatusCode, Value)> {
        let resp = self
            .post(method)
            .header("content-type", "application/proto")
            .body(req.encode_to_vec())
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        let body = resp.bytes().await.expect("body");
        if status == StatusCode::OK {
            assert_eq!(ct, "application/proto");
            Ok(Resp::decode(body.as_ref()).expect("a protobuf answer"))
        } else {
            assert!(ct.starts_with("application/json"), "{ct}");
            Err((status, serde_json::from_slice(&body).expect("a JSON error")))
        }
    }

    /// A server-streaming call in binary protobuf.
    async fn stream(&self, method: &str, req: &impl Message, timeout_ms: Option<u64>) -> Streamed {
        let mut rb = self
            .post(method)
            .header("content-type", "application/connect+proto")
            .body(connect::envelope(0, &req.encode_to_vec()).to_vec());
        if let Some(t) = timeout_ms {
            rb = rb.header("connect-timeout-ms", t.to_string());
        }
        let resp = rb.send().await.expect("request");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/connect+proto");
        let body = resp.bytes().await.expect("body");
        let (mut events, mut end, mut at) = (Vec::new(), Value::Null, 0);
        while at < body.len() {
            let flags = body[at];
            let len = u32::from_be_bytes(body[at + 1..at + 5].try_into().unwrap()) as usize;
            let msg = &body[at + 5..at + 5 + len];
            at += 5 + len;
            if flags & FLAG_END_STREAM != 0 {
                end = serde_json::from_slice(msg).expect("end-of-stream JSON");
                assert_eq!(at, body.len(), "nothing after the end of the stream");
            } else {
                let r = p::StartResponse::decode(msg).expect("a StartResponse");
                events.extend(r.event.and_then(|e| e.event));
            }
        }
        assert!(!end.is_null(), "the stream ended without its end message");
        Streamed { events, end }
    }

    async fn run(&self, line: &str) -> Streamed {
        self.stream("/process.Process/Start", &start(line), None)
            .await
    }
}

async fn list(e: &Envd) -> Result<(), (StatusCode, Value)> {
    e.unary::<_, p::ListResponse>("/process.Process/List", &p::ListRequest {})
        .await
        .map(|_| ())
}

fn start(line: &str) -> p::StartRequest {
    p::StartRequest {
        process: Some(p::ProcessConfig {
            cmd: "/bin/sh".into(),
            args: vec!["-c".into(), line.into()],
            envs: [("GREETING".to_string(), "hi".to_string())].into(),
            cwd: None,
        }),
        ..Default::default()
    }
}

fn stdout(s: &Streamed) -> String {
    let mut out = Vec::new();
    for e in &s.events {
        if let Event::Data(d) = e {
            if let Some(Output::Stdout(b)) = &d.output {
                out.extend_from_slice(b);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn end(s: &Streamed) -> p::process_event::EndEvent {
    s.events
        .iter()
        .find_map(|e| match e {
            Event::End(end) => Some(end.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no end event; end of stream {}", s.end))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_speak_binary_protobuf_and_outlive_their_streams() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("proto", None).await;
    let sb = e2b_sandbox(&a, json!({"templateID": "base"})).await;

    let s = sb.run("echo $GREETING; echo err >&2; pwd; exit 3").await;
    assert!(matches!(s.events.first(), Some(Event::Start(st)) if st.pid > 0));
    assert_eq!(stdout(&s), "hi\n/scratch\n");
    let e = end(&s);
    assert_eq!(
        (e.exit_code, e.exited, e.status.as_str()),
        (3, true, "exit status 3")
    );
    assert_eq!(s.end, json!({}));

    // A deadline ends the stream, not the process.
    let s = sb
        .stream("/process.Process/Start", &start("sleep 30"), Some(500))
        .await;
    assert_eq!(s.end["error"]["code"], "deadline_exceeded", "{}", s.end);
    let Some(Event::Start(st)) = s.events.first() else {
        panic!("no start event")
    };
    let pid = st.pid;
    let list: p::ListResponse = sb
        .unary("/process.Process/List", &p::ListRequest {})
        .await
        .unwrap();
    let listed = list
        .processes
        .iter()
        .find(|x| x.pid == pid)
        .expect("still running");
    assert_eq!(listed.config.as_ref().unwrap().args[1], "sleep 30");

    // Killed by signal: exit code -1 and Go's wording, as envd reports it.
    let kill = p::SendSignalRequest {
        process: Some(p::ProcessSelector {
            selector: Some(p::process_selector::Selector::Pid(pid)),
        }),
        signal: p::Signal::Sigkill as i32,
    };
    let _: p::SendSignalResponse = sb
        .unary("/process.Process/SendSignal", &kill)
        .await
        .unwrap();
    let again: Result<p::SendSignalResponse, _> = sb
        .unary(
            "/process.Process/SendSignal",
            &p::SendSignalRequest {
                process: Some(p::ProcessSelector {
                    selector: Some(p::process_selector::Selector::Pid(999_999)),
                }),
                signal: p::Signal::Sigkill as i32,
            },
        )
        .await;
    let (status, err) = again.unwrap_err();
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // Tags select processes; PTYs are refused, clearly.
    let mut tagged = start("echo tagged; sleep 30");
    tagged.tag = Some("web".into());
    let mut rb_events = sb
        .stream("/process.Process/Start", &tagged, Some(300))
        .await;
    assert_eq!(rb_events.end["error"]["code"], "deadline_exceeded");
    let conn = p::ConnectRequest {
        process: Some(p::ProcessSelector {
            selector: Some(p::process_selector::Selector::Tag("web".into())),
        }),
    };
    rb_events = sb
        .stream("/process.Process/Connect", &conn, Some(300))
        .await;
    assert!(
        matches!(rb_events.events.first(), Some(Event::Start(_))),
        "{}",
        rb_events.end
    );
    let mut pty = start("true");
    pty.pty = Some(p::Pty::default());
    let s = sb.stream("/process.Process/Start", &pty, None).await;
    assert_eq!(s.end["error"]["code"], "unimplemented", "{}", s.end);
    assert!(s.end["error"]["message"].as_str().unwrap().contains("PTY"));
}

/// E2B's `commands.run` (envd `Process/Start`) eight at a time in one
/// sandbox: each stream carries its own command's output (issue 15, item 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_commands_never_lose_their_output() {
    use futures::stream::{self, StreamExt};
    let server = Server::start();
    let (_, a) = server.admin().tenant("e2b-parallel", None).await;
    let sb = e2b_sandbox(&a, json!({"templateID": "base"})).await;
    let lost: Vec<(usize, String)> = stream::iter(0..600)
        .map(|i| {
            let sb = &sb;
            async move {
                let s = sb.run(&format!("echo hi-{i}")).await;
                assert_eq!(end(&s).exit_code, 0, "{}", s.end);
                (i, stdout(&s))
            }
        })
        .buffer_unordered(8)
        .filter(|(i, out)| {
            let ok = *out == format!("hi-{i}\n");
            async move { !ok }
        })
        .collect()
        .await;
    assert!(lost.is_empty(), "commands.run lost output: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_opens_for_the_right_token_only() {
    let server = Server::start();
    let admin = server.admin();
    let (_, a) = admin.tenant("owner", None).await;
    let (_, b) = admin.tenant("intruder", None).await;
    let mine = e2b_sandbox(&a, json!({})).await;
    let theirs = e2b_sandbox(&b, json!({})).await;

    // Control: the right token works (binary and JSON alike).
    assert!(list(&mine).await.is_ok());
    let json_list = mine
        .post("/process.Process/List")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json_list.status(), 200);
    assert_eq!(
        json_list.text().await.unwrap(),
        "{}",
        "no processes, no fields"
    );

    // Another sandbox's token, a tampered one, none at all.
    for token in [
        theirs.token.clone(),
        format!("{}x", mine.token),
        String::new(),
    ] {
        let forged = Envd {
            token,
            http: mine.http.clone(),
            base: mine.base.clone(),
            id: mine.id.clone(),
        };
        let (status, err) = list(&forged).await.unwrap_err();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
        assert_eq!(err["code"], "unauthenticated");
    }
    // A tenant's API key is not an access token either.
    let forged = Envd {
        token: a.token.clone(),
        http: mine.http.clone(),
        base: mine.base.clone(),
        id: mine.id.clone(),
    };
    assert_eq!(list(&forged).await.unwrap_err().0, StatusCode::UNAUTHORIZED);

    // By host name instead of header; other ports are not served.
    let by_host = |port: u16| {
        mine.http
            .post(format!("{}/process.Process/List", mine.base))
            .header("Host", format!("{port}-{}.sandbox.test", mine.id))
            .header("X-Access-Token", &mine.token)
            .header("content-type", "application/json")
            .body("{}")
    };
    assert_eq!(by_host(49983).send().await.unwrap().status(), 200);
    let closed = by_host(8080).send().await.unwrap();
    assert_eq!(closed.status(), 503);
    let body: Value = closed.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("port is not open"),
        "{body}"
    );

    // Unknown methods and routes; a unary call made as a stream.
    let r = mine
        .post("/process.Process/NoSuchMethod")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "unknown procedures are 404, as Connect servers answer"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unimplemented");
    let r = mine
        .post("/process.Process/List")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Once killed, the sandbox is "not found" in the words the SDKs know.
    let kill = a
        .send(
            a.http
                .delete(format!("{}/sandboxes/{}", a.base, mine.id))
                .header("X-API-Key", &a.token),
        )
        .await;
    assert_eq!(kill.status, 204, "{}", kill.text);
    let (status, err) = list(&mine).await.unwrap_err();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        err["message"].as_str().unwrap().contains("was not found"),
        "{err}"
    );
    let health = mine
        .http
        .get(format!("{}/health", mine.base))
        .header("E2b-Sandbox-Id", &mine.id)
        .header("X-Access-Token", &mine.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        502,
        "the SDKs read 502 on /health as not running"
    );
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
    let info = a
        .send(
            a.http
                .get(format!("{}/sandboxes/{id}", a.base))
                .header("X-API-Key", &a.token),
        )
        .await;
    assert_eq!(info.status, 200, "{}", info.text);
    let sb = Envd {
        http: a.http.clone(),
        base: a.base.clone(),
        id: id.clone(),
        token: info.body["envdAccessToken"].as_str().unwrap().to_string(),
    };

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
    // A refused change is audited as such.
    let gone: Result<f::RemoveResponse, _> = sb
        .unary(
            "/filesystem.Filesystem/Remove",
            &f::RemoveRequest {
                path: "/tmp/moved".into(),
            },
        )
        .await;
    assert_eq!(gone.unwrap_err().0, StatusCode::NOT_FOUND);
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
                "not_found (e2b)".to_string()
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

//! E2B's envd on a real server, spoken from Rust with our own protobuf
//! types: the binary protobuf codec (the SDKs use JSON, which their own
//! suites in `e2b_sdk.rs` cover), the Connect framing, and the attacks on
//! the front door's tokens (files, policy, secrets and audit through envd
//! are in `e2b_envd_guards.rs`).

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use warden_envd_wire::connect::{self, FLAG_END_STREAM};
use warden_envd_wire::process::{
    self as p, process_event::data_event::Output, process_event::Event,
};
use warden_envd_wire::prost::Message;

/// One sandbox seen through envd: its id and access token.
pub(crate) struct Envd {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) id: String,
    pub(crate) token: String,
}

/// Creates a sandbox through E2B's control API (`X-API-Key`).
pub(crate) async fn e2b_sandbox(a: &Api, body: Value) -> Envd {
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
pub(crate) struct Streamed {
    pub(crate) events: Vec<Event>,
    pub(crate) end: Value,
}

impl Envd {
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("E2b-Sandbox-Id", &self.id)
            .header("E2b-Sandbox-Port", "49983")
            .header("X-Access-Token", &self.token)
    }

    /// A unary call in binary protobuf.
    pub(crate) async fn unary<Req: Message, Resp: Message + Default>(
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
    pub(crate) async fn stream(
        &self,
        method: &str,
        req: &impl Message,
        timeout_ms: Option<u64>,
    ) -> Streamed {
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

    pub(crate) async fn run(&self, line: &str) -> Streamed {
        self.stream("/process.Process/Start", &start(line), None)
            .await
    }
}

async fn list(e: &Envd) -> Result<(), (StatusCode, Value)> {
    e.unary::<_, p::ListResponse>("/process.Process/List", &p::ListRequest {})
        .await
        .map(|_| ())
}

pub(crate) fn start(line: &str) -> p::StartRequest {
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

/// The bytes of every data event `pick` selects, as text.
fn data_of(s: &Streamed, pick: impl Fn(&Output) -> Option<&[u8]>) -> String {
    let mut out = Vec::new();
    for e in &s.events {
        if let Event::Data(d) = e {
            if let Some(b) = d.output.as_ref().and_then(&pick) {
                out.extend_from_slice(b);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn stdout(s: &Streamed) -> String {
    data_of(s, |o| match o {
        Output::Stdout(b) => Some(b),
        _ => None,
    })
}

pub(crate) fn end(s: &Streamed) -> p::process_event::EndEvent {
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
    assert_eq!(stdout(&s), "hi\n/home/user\n");
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

    // Tags select processes.
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
    // A PTY: one terminal of the size asked for as stdin, stdout and
    // stderr, told as `pty` data; without a size, 80x24.
    let mut pty = start("tty; stty size; echo err >&2; echo $TERM");
    pty.pty = Some(p::Pty {
        size: Some(p::pty::Size {
            cols: 100,
            rows: 30,
        }),
    });
    let s = sb.stream("/process.Process/Start", &pty, None).await;
    let (out, plain) = (pty_output(&s), stdout(&s));
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(
        out.contains("30 100\r\nerr\r\nxterm-256color\r\n"),
        "{out:?}"
    );
    assert_eq!(plain, "", "a terminal's output is pty data only");
    assert_eq!(end(&s).exit_code, 0);
    let mut pty = start("stty size");
    pty.pty = Some(p::Pty::default());
    let s = sb.stream("/process.Process/Start", &pty, None).await;
    assert_eq!(pty_output(&s), "24 80\r\n");
}

pub(crate) fn pty_output(s: &Streamed) -> String {
    data_of(s, |o| match o {
        Output::Pty(b) => Some(b),
        _ => None,
    })
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

    // By host name instead of header; another port is forwarded to
    // whatever listens there inside the sandbox (here nothing does).
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
    assert_eq!(closed.status(), 502);
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

//! Ports inside sandboxes, over a real HTTP server on loopback: `/v1`'s
//! `/ports/{port}/...` and E2B's `<port>-<id>.<domain>` host names and
//! `E2b-Sandbox-Port` headers reach a server the sandbox runs, through its
//! init (the real `warden-init`, run as a host process by the fake runtime,
//! so "the sandbox's loopback" is the host's here; the kernel's part of the
//! tunnel is the same init code the tier suites run in real sandboxes).
//! Who may reach which port, what a closed port and a vanished sandbox
//! answer, upgrades, and the bound on open connections.

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use common::{app, world, Init, World};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_server::state::Shared;
use warden_store::Quotas;

/// What the sandbox's server answers: the request as it arrived.
async fn echo(req: Request) -> Json<Value> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": bytes.len(),
        "body_sum": bytes.iter().map(|&b| b as u64).sum::<u64>(),
    }))
}

/// Agrees to any upgrade, then echoes what it is sent.
async fn upgrade(mut req: Request) -> Response {
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(up) = on.await {
            let mut io = TokioIo::new(up);
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(Body::empty())
        .unwrap()
}

/// A server "in the sandbox" (on the loopback its init reaches); its port.
async fn sandbox_server() -> u16 {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        )
        .route("/up", get(upgrade))
        .fallback(echo);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Warden's own server on loopback.
async fn serve(st: &Shared) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = warden_server::router(st.clone());
    tokio::spawn(async move {
        axum::serve(
            l,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    format!("http://{addr}")
}

/// Waits until every connection's charge is back (they are given back as
/// the connections' tasks end).
async fn charges_given_back(st: &Shared) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while st.buffers.total.used() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a connection's charge leaked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Setup {
    _w: World,
    st: Shared,
    base: String,
    http: reqwest::Client,
    /// Two tenants' API keys.
    a: String,
    b: String,
}

async fn setup(tune: impl FnOnce(&mut warden_server::config::Config)) -> Setup {
    let w = world(Init::Process, 10).await;
    let st = app(&w, tune);
    let base = serve(&st).await;
    let mut keys = Vec::new();
    for name in ["a", "b"] {
        let t = w.tenant(name, Quotas::default()).await;
        let (key, secret) = warden_server::service::tenants::create_key(&st, t.tenant_id(), "k")
            .await
            .unwrap();
        keys.push(warden_server::auth::full_key(&key.id, &secret));
    }
    let b = keys.pop().unwrap();
    let a = keys.pop().unwrap();
    Setup {
        _w: w,
        st,
        base,
        http: reqwest::Client::new(),
        a,
        b,
    }
}

impl Setup {
    async fn v1_sandbox(&self, key: &str) -> String {
        let r = self
            .http
            .post(format!("{}/v1/sandboxes", self.base))
            .bearer_auth(key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    async fn e2b_sandbox(&self, key: &str, network: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/sandboxes", self.base))
            .header("X-API-Key", key)
            // No egress proxy: the fake runtime has none to give.
            .json(
                &json!({"templateID": "base", "network": network, "allow_internet_access": false}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    /// A request by host name, as `get_host(port)` names it.
    fn by_host(&self, port: u16, id: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Host", format!("{port}-{id}.warden.test"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_ports_reach_the_sandboxs_server_for_its_tenant_only() {
    let s = setup(|_| {}).await;
    let port = sandbox_server().await;
    let id = s.v1_sandbox(&s.a).await;
    let url = |p: u16, rest: &str| format!("{}/v1/sandboxes/{id}/ports/{p}{rest}", s.base);

    let r = s
        .http
        .get(url(port, "/echo/a%20b?x=1&y"))
        .bearer_auth(&s.a)
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/echo/a%20b");
    assert_eq!(v["query"], "x=1&y");
    assert_eq!(v["headers"]["x-custom"], "kept");
    // The tenant's key is Warden's, never the sandbox's.
    assert!(v["headers"].get("authorization").is_none(), "{v}");

    // A body bigger than one tunnel chunk, streamed through.
    let body: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
    let sum: u64 = body.iter().map(|&b| b as u64).sum();
    let r = s
        .http
        .post(url(port, "/upload"))
        .bearer_auth(&s.a)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["method"].as_str(), v["body_len"].as_u64()),
        (Some("POST"), Some(3 << 20))
    );
    assert_eq!(v["body_sum"].as_u64(), Some(sum));

    // The root of a port, with and without its slash.
    for rest in ["", "/"] {
        let r = s
            .http
            .get(url(port, rest))
            .bearer_auth(&s.a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["path"], "/");
    }

    // Another tenant's key finds no such sandbox; no key is no caller.
    let r = s
        .http
        .get(url(port, "/"))
        .bearer_auth(&s.b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s.http.get(url(port, "/")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Nothing listening: 502 port_not_open; port 0: 400.
    let r = s
        .http
        .get(url(closed_port(), "/"))
        .bearer_auth(&s.a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "port_not_open"
    );
    let r = s
        .http
        .get(url(0, "/"))
        .bearer_auth(&s.a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Every connection's charge was given back.
    charges_given_back(&s.st).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2b_ports_are_public_by_default_and_else_need_a_token() {
    let s = setup(|_| {}).await;
    let port = sandbox_server().await;

    // E2B's default: public traffic, no token handed out or needed.
    let public = s.e2b_sandbox(&s.a, json!({})).await;
    assert!(public["trafficAccessToken"].is_null(), "{public}");
    let pid = public["sandboxID"].as_str().unwrap();
    let r = s.by_host(port, pid, "/hello").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/hello");
    // The domain names this server (no [e2b] domain is configured), so
    // `get_host` never points at E2B's own.
    let host = s.base.trim_start_matches("http://");
    assert_eq!(public["domain"], host, "{public}");
    // By headers, as the SDKs do with E2B_SANDBOX_URL; the routing headers
    // stay Warden's.
    let r = s
        .http
        .get(format!("{}/via-headers", s.base))
        .header("E2b-Sandbox-Id", pid)
        .header("E2b-Sandbox-Port", port.to_string())
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/via-headers");
    assert!(v["headers"].get("e2b-sandbox-id").is_none(), "{v}");

    // Private traffic: only with the sandbox's traffic token or its access
    // token.
    let private = s
        .e2b_sandbox(&s.a, json!({"allowPublicTraffic": false}))
        .await;
    let id = private["sandboxID"].as_str().unwrap();
    let traffic = private["trafficAccessToken"].as_str().unwrap();
    let access = private["envdAccessToken"].as_str().unwrap();
    let r = s.by_host(port, id, "/").send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Another sandbox's token opens nothing here.
    let other = s
        .e2b_sandbox(&s.b, json!({"allowPublicTraffic": false}))
        .await;
    for wrong in [
        other["trafficAccessToken"].as_str().unwrap(),
        other["envdAccessToken"].as_str().unwrap(),
        "et_forged",
    ] {
        let r = s
            .by_host(port, id, "/")
            .header("e2b-traffic-access-token", wrong)
            .header("x-access-token", wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{wrong}");
    }
    for (name, token) in [
        ("e2b-traffic-access-token", traffic),
        ("x-access-token", access),
    ] {
        let r = s
            .by_host(port, id, "/t")
            .header(name, token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let v: Value = r.json().await.unwrap();
        // Tokens are Warden's: the sandbox's server never sees them.
        assert!(v["headers"].get(name).is_none(), "{v}");
    }

    // A closed port and a sandbox that is not there, in the words the SDKs
    // look for.
    let r = s.by_host(closed_port(), pid, "/").send().await.unwrap();
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("port is not open"),
        "{v}"
    );
    let r = s
        .by_host(port, "sbx_nosuchsandbox0000000000", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("was not found"),
        "{v}"
    );
}

/// Sends an upgrade request over a raw connection; answers the stream
/// once the 101 is read.
async fn upgraded(base: &str, path: &str, key: &str) -> tokio::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Connection: upgrade\r\nUpgrade: echo\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(c.read(&mut byte).await.unwrap(), 1, "{got:?}");
        got.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("upgrade: echo"),
        "{text}"
    );
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_pass_through_and_connections_are_bounded_per_tenant() {
    let s = setup(|c| c.server.port_connections_tenant = 1).await;
    let port = sandbox_server().await;
    let id = s.v1_sandbox(&s.a).await;
    let path = format!("/v1/sandboxes/{id}/ports/{port}/up");

    let mut c = upgraded(&s.base, &path, &s.a).await;
    for msg in [&b"ping"[..], &[7u8; 100_000][..]] {
        c.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }

    // The tenant's one connection is held by the upgraded stream: a second
    // is refused, and tenant b is not held up by a's.
    let url = format!("{}/v1/sandboxes/{id}/ports/{port}/x", s.base);
    let r = s.http.get(&url).bearer_auth(&s.a).send().await.unwrap();
    assert_eq!(r.status(), 429, "{}", r.text().await.unwrap());
    let theirs = s.v1_sandbox(&s.b).await;
    let r = s
        .http
        .get(format!("{}/v1/sandboxes/{theirs}/ports/{port}/x", s.base))
        .bearer_auth(&s.b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Closing the stream gives the connection back.
    drop(c);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.http.get(&url).bearer_auth(&s.a).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    charges_given_back(&s.st).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_ending_mid_request_ends_the_request() {
    let s = setup(|_| {}).await;
    let port = sandbox_server().await;
    let id = s.v1_sandbox(&s.a).await;
    let url = format!("{}/v1/sandboxes/{id}/ports/{port}/slow", s.base);
    let pending = tokio::spawn({
        let (http, key) = (s.http.clone(), s.a.clone());
        async move {
            match http.get(&url).bearer_auth(&key).send().await {
                Ok(r) => (
                    Some(r.status().as_u16()),
                    r.text().await.unwrap_or_default(),
                ),
                Err(e) => (None, e.to_string()),
            }
        }
    });
    // The request is in the sandbox's server once a connection is charged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.st.buffers.total.used() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s
        .http
        .delete(format!("{}/v1/sandboxes/{id}", s.base))
        .bearer_auth(&s.a)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Ended well before the server's 60 s answer: the sandbox took the
    // connection with it.
    let ended = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the request outlived its sandbox")
        .unwrap();
    // A 502 from Warden, or the connection cut: never the server's answer.
    assert!(matches!(ended.0, None | Some(502)), "{ended:?}");
    assert_ne!(ended.1, "late");
    charges_given_back(&s.st).await;
}

//! E2B's REST control API against a real server: raw HTTP with the
//! headers, paths and JSON the SDKs send, answers checked field by field
//! as the SDKs parse them, and the effects checked through the native API.

use crate::harness::*;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

mod life;
mod listing;
mod network;
mod tenants;

/// The operator's internet allowlist and domain for these servers.
const INTERNET: &str = "pypi.org,files.pythonhosted.org";
const DOMAIN: &str = "e2b.warden.test";

fn start() -> Server {
    Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_E2B_INTERNET_ALLOW", INTERNET),
            ("WARDEN_E2B_DOMAIN", DOMAIN),
        ],
    )
}

/// A client that authenticates like the SDKs: `X-API-Key`.
struct E2b {
    http: reqwest::Client,
    base: String,
    key: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl E2b {
    fn new(native: &Api) -> E2b {
        E2b {
            http: reqwest::Client::new(),
            base: native.base.clone(),
            key: native.token.clone(),
        }
    }

    fn with_key(&self, key: &str) -> E2b {
        E2b {
            key: key.into(),
            ..E2b::new(&Api::new(&self.base, ""))
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-API-Key", &self.key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates a sandbox the way `Sandbox.create()` does; returns the
    /// `Sandbox` answer.
    async fn create(&self, body: Value) -> Value {
        let r = self.post("/v2/sandboxes", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }
}

/// An E2B error: that status, `{"code": <status>, "message": "..."}`.
fn e2b_error(r: &Answer, status: u16) -> String {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(r.body["code"], status, "{}", r.text);
    r.body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {}", r.text))
        .to_string()
}

fn ms(rfc3339: &Value) -> i64 {
    let t = humantime::parse_rfc3339_weak(rfc3339.as_str().expect("a time")).expect("RFC 3339");
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `endAt` of a running sandbox, checked to be `secs` from now.
async fn assert_ends_in(e: &E2b, id: &str, secs: i64) {
    let d = e.get(&format!("/sandboxes/{id}")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    let left = ms(&d.body["endAt"]) - now_ms();
    assert!(
        (left - secs * 1000).abs() < 5000,
        "endAt is {left} ms away, expected {secs} s: {}",
        d.text
    );
}

/// The hosts of a sandbox's egress rules, as the native API shows them
/// (None: no network at all).
async fn native_hosts(a: &Api, id: &str) -> Option<Vec<String>> {
    let r = a.get(&format!("/v1/sandboxes/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let n = &r.body["network"];
    (n["mode"] == "allowlist").then(|| {
        n["rules"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| r["host"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    })
}

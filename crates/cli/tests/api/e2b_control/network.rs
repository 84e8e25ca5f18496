//! Network settings onto egress rules, and the refusals.

use super::*;

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
    // Unsupported operations: 400 with the reason, which the SDKs raise.
    let msg = e2b_error(&e.post("/v3/templates", json!({"name": "t"})).await, 400);
    assert!(msg.contains("templates"), "{msg}");
    e2b_error(&e.get("/templates/base/builds/b1/status").await, 400);
    // Snapshots are Warden's own: the tenant has none yet.
    let r = e.get("/snapshots").await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (200, json!([])),
        "{}",
        r.text
    );
    // Volumes are Warden's own: one the tenant does not have is not found.
    let msg = e2b_error(
        &create(json!({"templateID": "base", "volumeMounts": [{"name": "v", "path": "/data"}]}))
            .await,
        404,
    );
    assert!(msg.contains("volume"), "{msg}");
    assert_eq!(e.get("/volumes").await.body, json!([]));
    // Nothing refused was created.
    assert_eq!(
        e.get("/v2/sandboxes").await.body.as_array().unwrap().len(),
        3
    );
    // E2B's defaults said out loud are accepted: `autoPauseMemory: true`
    // (a timeout pause keeps what this sandbox can: its files natively),
    // and `mcp`, whose gateway the SDK starts in the sandbox itself.
    for body in [
        json!({"templateID": "base", "autoPause": true, "autoPauseMemory": true}),
        json!({"templateID": "base", "mcp": {"x": {}}}),
    ] {
        let r = create(body.clone()).await;
        assert_eq!(r.status, 201, "{body}: {}", r.text);
    }
}

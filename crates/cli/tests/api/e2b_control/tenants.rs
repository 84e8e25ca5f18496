//! Keys, and another tenant's sandbox on every route.

use super::*;

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

    // The key in E2B's format (what newer SDKs check for): the same key.
    let (tid, _) = admin.tenant("e2b-gamma", None).await;
    let made = admin
        .post(&format!("/v1/tenants/{tid}/keys"), json!({}))
        .await;
    let key = made.body["key"].as_str().unwrap();
    assert_eq!(made.body["e2b_key"], e2b_spelling(key), "{}", made.text);
    let listed = ea
        .with_key(&e2b_spelling(&a.token))
        .get("/v2/sandboxes")
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.body.as_array().unwrap().len(),
        1,
        "A's own, by either spelling"
    );
    let theirs = ea
        .with_key(&e2b_spelling(&b.token))
        .get("/v2/sandboxes")
        .await;
    assert_eq!(theirs.body, json!([]), "B's spelled key is B's");
    let mut tampered = a.token.clone();
    tampered.push('x');
    e2b_error(
        &ea.with_key(&e2b_spelling(&tampered))
            .get("/v2/sandboxes")
            .await,
        401,
    );

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

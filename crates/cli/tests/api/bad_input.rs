//! Bad input: each a clear 4xx in the one error shape, and the server still
//! healthy afterwards.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_errors() {
    let server = Server::start();
    let admin = server.admin();
    let (tid, a) = admin.tenant("careful", Some(json!({"max_sandboxes": 1, "max_memory_bytes": 1u64 << 30, "max_storage_bytes": 3000, "max_file_bytes": 1024}))).await;
    let sb = a.sandbox(json!({"limits": {"memory_mb": 64}})).await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        // JSON that is not JSON, of the wrong type, with unknown fields.
        (
            a.req(Method::POST, "/v1/sandboxes")
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"timeout_secs": "soon"})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"surprise": 1})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes").body("{}"),
            415,
            "unsupported_media_type",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"timeout_secs": 0})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"limits": {"memory_mb": 1}})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"image": "../../etc"})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"env": {"A=B": "x"}})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/sandboxes")
                .json(&json!({"files": ["file_../../x"]})),
            404,
            "not_found",
        ),
        (
            a.req(Method::POST, &format!("/v1/sandboxes/{sb}/exec"))
                .json(&json!({"command": []})),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, &format!("/v1/sandboxes/{sb}/exec"))
                .json(&json!({"command": ["a"], "shell": "b"})),
            400,
            "bad_request",
        ),
        // A huge JSON body.
        (
            a.req(Method::POST, &format!("/v1/sandboxes/{sb}/exec"))
                .header("content-type", "application/json")
                .body(format!("{{\"shell\": \"{}\"}}", "x".repeat(2 << 20))),
            413,
            "payload_too_large",
        ),
        // Odd names and traversal in uploads.
        (
            a.req(Method::POST, "/v1/files?name=..%2Fescape").body("x"),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/files?name=a%2Fb").body("x"),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/files?name=..").body("x"),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/files?name=nul%00byte").body("x"),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/files?name=esc%1b%5b31m").body("x"),
            400,
            "bad_request",
        ),
        (
            a.req(Method::POST, "/v1/files").body("x"),
            400,
            "bad_request",
        ),
        // Over the per-file limit (1 KiB).
        (
            a.req(Method::POST, "/v1/files?name=big.bin")
                .body(vec![7u8; 2048]),
            413,
            "payload_too_large",
        ),
        // Traversal and relative paths inside a sandbox.
        (
            a.req(
                Method::GET,
                &format!("/v1/sandboxes/{sb}/files?path=/scratch/../etc/shadow"),
            ),
            400,
            "bad_request",
        ),
        (
            a.req(
                Method::GET,
                &format!("/v1/sandboxes/{sb}/files?path=etc/passwd"),
            ),
            400,
            "bad_request",
        ),
        (
            a.req(
                Method::GET,
                &format!("/v1/sandboxes/{sb}/files?path=/no/such"),
            ),
            404,
            "not_found",
        ),
        (
            a.req(Method::GET, &format!("/v1/sandboxes/{sb}/files")),
            400,
            "bad_request",
        ),
        // Ids that are not ids.
        (a.req(Method::GET, "/v1/files/%2e%2e"), 404, "not_found"),
        (
            a.req(Method::GET, "/v1/sandboxes/sbx_doesnotexist000000"),
            404,
            "not_found",
        ),
        (
            a.req(Method::GET, "/v1/sandboxes?state=sideways"),
            400,
            "bad_request",
        ),
        // Routes and methods that do not exist.
        (a.req(Method::GET, "/v1/nothing-here"), 404, "not_found"),
        (a.req(Method::PATCH, "/v1/files"), 405, "method_not_allowed"),
        // Auth: none, garbage, a made-up key, the wrong scheme.
        (
            reqwest::Client::new().get(format!("{}/v1/files", a.base)),
            401,
            "unauthorized",
        ),
        (
            reqwest::Client::new()
                .get(format!("{}/v1/files", a.base))
                .header("authorization", "Bearer "),
            401,
            "unauthorized",
        ),
        (
            a.with_token("garbage").req(Method::GET, "/v1/files"),
            401,
            "unauthorized",
        ),
        (
            a.with_token("wk_key_aaaaaaaaaaaaaaaaaaaa.bbbb")
                .req(Method::GET, "/v1/files"),
            401,
            "unauthorized",
        ),
        (
            reqwest::Client::new()
                .get(format!("{}/v1/files", a.base))
                .basic_auth("u", Some("p")),
            401,
            "unauthorized",
        ),
    ];
    for (i, (rb, status, code)) in cases.into_iter().enumerate() {
        let r = a.send(rb).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code),
            "case {i}: {}",
            r.text
        );
    }
    // Quotas: a second sandbox, and storage past its limit, name the limit.
    let r = a
        .post("/v1/sandboxes", json!({"limits": {"memory_mb": 64}}))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "quota_exceeded"));
    assert!(r.text.contains("max_sandboxes"), "{}", r.text);
    a.upload("one.txt", &[b'x'; 1000]).await;
    a.upload("two.txt", &[b'x'; 1000]).await;
    let r = a
        .send(
            a.req(Method::POST, "/v1/files?name=three.bin")
                .body(vec![1u8; 1001]),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (413, "payload_too_large"),
        "{}",
        r.text
    );
    assert!(r.text.contains("max_storage_bytes"), "{}", r.text);
    // A revoked key stops working at once; a disabled tenant is refused.
    let k = admin
        .post(&format!("/v1/tenants/{tid}/keys"), json!({"name": "temp"}))
        .await;
    let temp = a.with_token(k.body["key"].as_str().unwrap());
    assert_eq!(temp.get("/v1/files").await.status, 200);
    let kid = k.body["id"].as_str().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/v1/tenants/{tid}/keys/{kid}"))
            .await
            .status,
        204
    );
    let r = temp.get("/v1/files").await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "unauthorized"));
    // Deleting a tenant with a running sandbox needs force.
    let r = admin.delete(&format!("/v1/tenants/{tid}")).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "conflict"));
    assert_eq!(
        admin
            .post(&format!("/v1/tenants/{tid}/disable"), json!({}))
            .await
            .status,
        200
    );
    let r = a.get("/v1/files").await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    // Disabling stopped its sandbox.
    assert!(
        cgroups_left(&server).is_empty(),
        "{:?}",
        cgroups_left(&server)
    );
    // Still healthy after all of it.
    let h = reqwest::get(format!("{}/healthz", a.base)).await.unwrap();
    assert_eq!(h.status(), 200);
    let r = admin.delete(&format!("/v1/tenants/{tid}?force=true")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // The tenant's objects are gone from the store.
    let objects = server.data_dir.join("objects/tenants").join(&tid);
    assert!(
        !objects.exists() || std::fs::read_dir(&objects).unwrap().count() == 0,
        "objects left in {}",
        objects.display()
    );
    assert_eq!(admin.get(&format!("/v1/tenants/{tid}")).await.status, 404);
}

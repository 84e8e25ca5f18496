//! Command policy on a real server: denied commands never start (a marker
//! file they would have created stays absent, with a control that does
//! create it), allow lists, the audit trail, who may set a policy, and the
//! CLI. The operator's hook is in `hook.rs`.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod hook;

pub async fn put_policy(admin: &Api, tid: &str, body: Value) -> Reply {
    admin
        .send(
            admin
                .req(Method::PUT, &format!("/v1/tenants/{tid}/command-policy"))
                .json(&body),
        )
        .await
}

pub async fn exec(a: &Api, sb: &str, body: Value) -> Reply {
    a.post(&format!("/v1/sandboxes/{sb}/exec"), body).await
}

/// Whether `path` exists in the sandbox (asked with a command the policy
/// under test lets through: `test` is on every allow list below).
pub async fn exists(a: &Api, sb: &str, path: &str) -> bool {
    let r = exec(a, sb, json!({"command": ["test", "-e", path]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["exit_code"] == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_commands_never_start_and_allow_lists_admit_only_what_matches() {
    let server = Server::start();
    let admin = server.admin();
    let (tid, a) = admin.tenant("guarded", None).await;
    let (_, b) = admin.tenant("unguarded", None).await;
    let sb = a.sandbox(json!({})).await;

    // No policy: everything runs.
    let p = a.get("/v1/command-policy").await;
    assert_eq!(
        p.body,
        json!({"deny": [], "allow": [], "hook": false, "hook_configured": false}),
        "{}",
        p.text
    );
    let set = put_policy(
        &admin,
        &tid,
        json!({"deny": ["*touch /scratch/marker*", "rm -rf *"]}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.body["deny"][1], "rm -rf *");
    assert_eq!(a.get("/v1/command-policy").await.body, set.body);

    // Every way of running it: argv, shell line, background, session, SSE.
    let touch = "touch /scratch/marker";
    let m = refused(
        &exec(&a, &sb, json!({"command": ["sh", "-c", touch]})).await,
        403,
        "command_denied",
    );
    assert_eq!(
        m,
        "command denied by policy: matches the deny pattern \"*touch /scratch/marker*\""
    );
    for body in [
        json!({"shell": touch}),
        json!({"shell": touch, "background": true}),
        json!({"shell": touch, "session": "s1"}),
        json!({"command": ["/usr/bin/touch", "/scratch/marker"]}),
    ] {
        refused(&exec(&a, &sb, body).await, 403, "command_denied");
    }
    let sse = a
        .send(
            a.req(Method::POST, &format!("/v1/sandboxes/{sb}/exec"))
                .header("Accept", "text/event-stream")
                .json(&json!({"shell": touch})),
        )
        .await;
    refused(&sse, 403, "command_denied");
    let m = refused(
        &exec(&a, &sb, json!({"command": ["/bin/rm", "-rf", "/scratch"]})).await,
        403,
        "command_denied",
    );
    assert!(m.contains("\"rm -rf *\""), "{m}");
    let procs = a.get(&format!("/v1/sandboxes/{sb}/processes")).await;
    assert_eq!(procs.body["items"], json!([]), "{}", procs.text);
    assert!(
        !exists(&a, &sb, "/scratch/marker").await,
        "a denied command ran"
    );

    // The denials are in the tenant's audit chain, with the command.
    let denied = audited(&a, "exec.denied").await;
    assert_eq!(denied.len(), 7, "{denied:?}");
    let (actor, target, outcome) = &denied[0];
    assert!(actor.starts_with("key_"), "{actor}");
    assert_eq!(target, &sb);
    assert_eq!(
        outcome,
        "command_denied: matches the deny pattern \"*touch /scratch/marker*\"; \
         command: sh -c touch /scratch/marker"
    );

    // Control: another tenant's identical command runs, and so does this
    // tenant's once its policy no longer denies it.
    let sb_b = b.sandbox(json!({})).await;
    b.ok(&sb_b, touch).await;
    assert!(exists(&b, &sb_b, "/scratch/marker").await);
    let cleared = put_policy(&admin, &tid, json!({})).await;
    assert_eq!(cleared.body["deny"], json!([]), "{}", cleared.text);
    a.ok(&sb, touch).await;
    assert!(exists(&a, &sb, "/scratch/marker").await);

    // Allow list: only what matches runs; deny still wins.
    let set = put_policy(
        &admin,
        &tid,
        json!({"allow": ["ls*", "test -e *", "echo *"], "deny": ["echo *secret*"]}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.text);
    a.ok(&sb, "ls /").await;
    let r = exec(&a, &sb, json!({"command": ["/bin/ls", "-d", "/"]})).await;
    assert_eq!(r.body["stdout"], "/\n", "{}", r.text);
    let m = refused(
        &exec(&a, &sb, json!({"shell": "touch /scratch/other"})).await,
        403,
        "command_denied",
    );
    assert_eq!(m, "command denied by policy: not on the allow list");
    refused(
        &exec(&a, &sb, json!({"shell": "echo the secret"})).await,
        403,
        "command_denied",
    );
    assert!(!exists(&a, &sb, "/scratch/other").await);
    a.ok(&sb, "echo fine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_admin_sets_policies_and_bad_ones_are_refused() {
    let server = Server::start();
    let admin = server.admin();
    let (tid, a) = admin.tenant("self-serve", None).await;
    let path = format!("/v1/tenants/{tid}/command-policy");
    // A tenant key is not the admin token, for reading or writing; and its
    // own read-only route takes no writes.
    let r = put_policy(&a, &tid, json!({})).await;
    refused(&r, 401, "unauthorized");
    refused(&a.get(&path).await, 401, "unauthorized");
    let r = a
        .send(
            a.req(Method::PUT, "/v1/command-policy")
                .json(&json!({"deny": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);

    let m = refused(
        &put_policy(&admin, &tid, json!({"deny": ["rm ["]})).await,
        400,
        "bad_request",
    );
    assert!(
        m.starts_with("deny: pattern \"rm [\" is not a valid glob"),
        "{m}"
    );
    let m = refused(
        &put_policy(&admin, &tid, json!({"allow": [""]})).await,
        400,
        "bad_request",
    );
    assert!(m.contains("allow: an empty pattern"), "{m}");
    refused(
        &put_policy(&admin, &tid, json!({"denied": ["x"]})).await,
        400,
        "bad_request",
    );
    refused(
        &put_policy(&admin, &tid, json!({"deny": "rm *"})).await,
        400,
        "bad_request",
    );
    // The hook runs on the host: a server without one refuses to promise it.
    let m = refused(
        &put_policy(&admin, &tid, json!({"hook": true})).await,
        400,
        "bad_request",
    );
    assert!(m.contains("no command policy hook configured"), "{m}");
    let r = put_policy(&admin, "tn_nope", json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Nothing was stored by the refused requests.
    let got = admin.get(&path).await;
    assert_eq!(got.body["deny"], json!([]), "{}", got.text);
    assert_eq!(got.body["hook"], false);
    assert!(audited(&a, "tenant.command_policy").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_policies_and_a_denied_exec_says_why() {
    use crate::cli::{json_of, warden};
    let server = Server::start();
    let admin = server.admin();
    let (tid, a) = admin.tenant("cli-guarded", None).await;
    let sb = a.sandbox(json!({})).await;
    let set = json_of(&warden(
        &server,
        None,
        &[
            "tenant",
            "command-policy",
            &tid,
            "--deny",
            "*marker*",
            "--allow",
            "touch *",
            "--json",
        ],
    ));
    assert_eq!(
        set,
        json!({"deny": ["*marker*"], "allow": ["touch *"], "hook": false, "hook_configured": false})
    );
    let shown = warden(&server, None, &["tenant", "command-policy", &tid]);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "deny:   \"*marker*\"\nallow:  \"touch *\"\nhook:   off\n"
    );
    let out = warden(
        &server,
        Some(&a.token),
        &["exec", &sb, "--", "touch", "/scratch/marker"],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warden: 403 command_denied: command denied by policy: matches the deny pattern \"*marker*\"\n"
    );
    let bad = warden(
        &server,
        None,
        &["tenant", "command-policy", &tid, "--deny", "a[", "--json"],
    );
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("400 bad_request: deny: pattern \"a[\""),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let cleared = json_of(&warden(
        &server,
        None,
        &["tenant", "command-policy", &tid, "--clear", "--json"],
    ));
    assert_eq!(cleared["allow"], json!([]));
    let ok = warden(
        &server,
        Some(&a.token),
        &["exec", &sb, "--", "touch", "/scratch/marker"],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

//! Command policy on a real server: denied commands never start (a marker
//! file they would have created stays absent, with a control that does
//! create it), allow lists, the operator's hook honoured (and shown the
//! request with env names only), a hook that hangs or crashes failing
//! closed without leaving anything running, review submits refused, the
//! audit trail, and who may set a policy.

use crate::harness::*;
use crate::reviews::{submit, wait_done};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

async fn put_policy(admin: &Api, tid: &str, body: Value) -> Reply {
    admin
        .send(
            admin
                .req(Method::PUT, &format!("/v1/tenants/{tid}/command-policy"))
                .json(&body),
        )
        .await
}

async fn exec(a: &Api, sb: &str, body: Value) -> Reply {
    a.post(&format!("/v1/sandboxes/{sb}/exec"), body).await
}

/// Whether `path` exists in the sandbox (asked with a command the policy
/// under test lets through: `test` is on every allow list below).
async fn exists(a: &Api, sb: &str, path: &str) -> bool {
    let r = exec(a, sb, json!({"command": ["test", "-e", path]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["exit_code"] == 0
}

/// Exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn write_script(dir: &Path, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
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

/// A hook that logs each request it gets and denies command lines that
/// mention "forbidden" (but lets `test` look for such files).
const DECIDING_HOOK: &str = r#"#!/usr/bin/python3
import json, sys
req = json.load(sys.stdin)
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(req) + "\n")
line = req["command_line"]
if "forbidden" in line and not line.startswith("test "):
    print(json.dumps({"allow": False, "reason": "nothing forbidden, please"}))
else:
    print(json.dumps({"allow": True}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hooks_answer_is_honoured_for_execs_and_reviews() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("requests.jsonl");
    let hook = write_script(tmp.path(), "hook.py", DECIDING_HOOK);
    let hook_env = serde_json::to_string(&[hook.as_str(), &log.display().to_string()]).unwrap();
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[("WARDEN_COMMAND_POLICY_HOOK", &hook_env)],
    );
    let admin = server.admin();
    let (tid, a) = admin.tenant("hooked", None).await;
    let (_, b) = admin.tenant("not-hooked", None).await;
    let set = put_policy(&admin, &tid, json!({"hook": true, "deny": ["*rm -rf*"]})).await;
    assert_eq!(
        set.body,
        json!({"deny": ["*rm -rf*"], "allow": [], "hook": true, "hook_configured": true}),
        "{}",
        set.text
    );
    let sb = a.sandbox(json!({})).await;
    let requests = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    // Allowed by the hook: it runs. The hook saw the request, with the
    // variables' names and never their values.
    let r = exec(
        &a,
        &sb,
        json!({"shell": "touch /scratch/allowed", "env": {"API_TOKEN": "hunter2"}, "cwd": "/scratch"}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["exit_code"]),
        (200, &json!(0)),
        "{}",
        r.text
    );
    let seen = requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let q = &seen[0];
    assert_eq!(
        (
            &q["kind"],
            &q["tenant"],
            &q["sandbox"],
            &q["shell"],
            &q["argv"]
        ),
        (
            &json!("exec"),
            &json!(tid),
            &json!(sb),
            &json!("touch /scratch/allowed"),
            &Value::Null
        )
    );
    assert_eq!(
        (&q["env"], &q["cwd"]),
        (&json!(["API_TOKEN"]), &json!("/scratch"))
    );
    assert!(!std::fs::read_to_string(&log).unwrap().contains("hunter2"));

    // Denied by the hook: its reason comes back, and the command never ran.
    let m = refused(
        &exec(&a, &sb, json!({"command": ["touch", "/scratch/forbidden"]})).await,
        403,
        "command_denied",
    );
    assert_eq!(
        m,
        "command denied by policy: policy hook: nothing forbidden, please"
    );
    assert_eq!(
        requests()[1]["argv"],
        json!(["touch", "/scratch/forbidden"])
    );
    // A deny pattern decides before the hook is asked.
    refused(
        &exec(&a, &sb, json!({"shell": "rm -rf /scratch/allowed"})).await,
        403,
        "command_denied",
    );
    assert!(exists(&a, &sb, "/scratch/allowed").await);
    assert!(!exists(&a, &sb, "/scratch/forbidden").await);
    let n = requests().len();
    assert_eq!(n, 4, "rm -rf reached the hook: {:?}", requests());
    // Another tenant's policy does not ask the hook.
    let sb_b = b.sandbox(json!({})).await;
    b.ok(&sb_b, "touch /scratch/forbidden").await;
    assert_eq!(requests().len(), n);

    // Reviews: refused at submit (403, no job), and an allowed job is asked
    // about again when it starts, then runs.
    let r = a
        .post(
            "/v1/reviews",
            json!({"files": [], "shell": "echo forbidden > /output/x"}),
        )
        .await;
    let m = refused(&r, 403, "command_denied");
    assert!(m.ends_with("policy hook: nothing forbidden, please"), "{m}");
    let listed = a.get("/v1/reviews").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    let id = submit(&a, json!({"files": [], "shell": "echo ok > /output/x"})).await;
    let done = wait_done(&a, &id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let kinds: Vec<(Value, Value)> = requests()[n..]
        .iter()
        .map(|q| (q["kind"].clone(), q["review"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (json!("review"), Value::Null),
            (json!("review"), Value::Null),
            (json!("review"), json!(id))
        ]
    );
    let denied = audited(&a, "review.denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(
        denied[0].2,
        "command_denied: policy hook: nothing forbidden, please; \
         command: echo forbidden > /output/x"
    );
    assert_eq!(audited(&a, "exec.denied").await.len(), 2);
}

/// A hook whose behaviour is chosen by a file next to it: it writes its
/// own pid and a child's, then hangs, crashes or talks nonsense.
const MISBEHAVING_HOOK: &str = r#"#!/bin/sh
dir=$(dirname "$0")
cat > /dev/null
case $(cat "$dir/mode") in
hang)
    sleep 60 &
    echo "$$ $!" > "$dir/pids"
    wait ;;
crash)
    echo "hook: lost its config" >&2
    exit 3 ;;
garbage)
    echo "maybe?" ;;
esac
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_hangs_or_crashes_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let hook = write_script(tmp.path(), "hook.sh", MISBEHAVING_HOOK);
    let mode = |m: &str| std::fs::write(tmp.path().join("mode"), m).unwrap();
    let mut server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_COMMAND_POLICY_HOOK", &hook),
            ("WARDEN_COMMAND_POLICY_HOOK_TIMEOUT_MS", "500"),
        ],
    );
    let admin = server.admin();
    let (tid, a) = admin.tenant("unlucky", None).await;
    let set = put_policy(&admin, &tid, json!({"hook": true, "allow": ["*"]})).await;
    assert_eq!(set.status, 200, "{}", set.text);
    let sb = a.sandbox(json!({})).await;
    let touch = json!({"shell": "touch /scratch/marker"});

    mode("hang");
    let t0 = Instant::now();
    let m = refused(
        &exec(&a, &sb, touch.clone()).await,
        503,
        "policy_unavailable",
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        m.starts_with("the command policy could not be checked (policy hook failed: ")
            && m.contains("gave no answer within 500 ms and was killed")
            && m.ends_with("the command was not run"),
        "{m}"
    );
    // The hook and the child it started are gone.
    let pids = std::fs::read_to_string(tmp.path().join("pids")).unwrap();
    let pids: Vec<i32> = pids
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let t0 = Instant::now();
    while pids.iter().any(|&p| alive(p)) && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !pids.iter().any(|&p| alive(p)),
        "hook left running: {pids:?}"
    );

    mode("crash");
    let m = refused(
        &exec(&a, &sb, touch.clone()).await,
        503,
        "policy_unavailable",
    );
    assert!(m.contains("exit status: 3: hook: lost its config"), "{m}");
    mode("garbage");
    let m = refused(
        &exec(&a, &sb, touch.clone()).await,
        503,
        "policy_unavailable",
    );
    assert!(m.contains("answered \"maybe?\""), "{m}");
    let r = a
        .post("/v1/reviews", json!({"files": [], "shell": "true"}))
        .await;
    refused(&r, 503, "policy_unavailable");

    // None of them ran the command; each refusal is audited.
    let denied = audited(&a, "exec.denied").await;
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert!(
        denied.iter().all(
            |(_, _, o)| o.starts_with("policy_unavailable: policy hook failed: ")
                && o.ends_with("; command: touch /scratch/marker")
        ),
        "{denied:?}"
    );
    assert_eq!(audited(&a, "review.denied").await.len(), 1);
    // Looking needs a hook that answers again.
    let fixed = write_script(
        tmp.path(),
        "hook.sh",
        "#!/bin/sh\ncat >/dev/null\necho '{\"allow\": true}'\n",
    );
    assert_eq!(fixed, hook);
    assert!(
        !exists(&a, &sb, "/scratch/marker").await,
        "a refused command ran"
    );

    // A policy that wants the hook, on a server that has none: refused at
    // request time, not run unchecked.
    server.stop();
    let next = Server::start_in(&server.data_dir, &RuntimeDirs::shared(), &[]);
    let a = Api::new(&next.url, &a.token);
    let sb = a.sandbox(json!({})).await;
    let m = refused(
        &exec(&a, &sb, touch.clone()).await,
        503,
        "policy_unavailable",
    );
    assert!(m.contains("this server has none configured"), "{m}");
    let p = a.get("/v1/command-policy").await;
    assert_eq!(
        (&p.body["hook"], &p.body["hook_configured"]),
        (&json!(true), &json!(false))
    );
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

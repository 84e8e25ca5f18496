//! The operator's policy hook on a real server: its answers honoured for
//! execs and reviews (and shown the request with env names only), and a
//! hook that hangs, crashes or talks nonsense failing closed without
//! leaving anything running.

use super::{exec, exists, put_policy};
use crate::harness::*;
use crate::reviews::{submit, wait_done};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

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

/// A hook that logs each request it gets and denies command lines that
/// mention "forbidden" (but lets `test` look for such files).
const DECIDING_HOOK: &str = r#"#!/usr/bin/python3
import json, os, sys
req = json.load(sys.stdin)
req["saw_admin_token"] = "WARDEN_ADMIN_TOKEN" in os.environ
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
    assert_eq!(
        q["saw_admin_token"], false,
        "the server's environment leaked"
    );

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

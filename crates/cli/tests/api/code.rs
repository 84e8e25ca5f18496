//! `/v1/sandboxes/{id}/code`: the code interpreter for Warden's own clients,
//! in a real sandbox on the python-data image: values and state, output,
//! errors, figures, per-run env, contexts, a timeout that interrupts, and
//! another tenant's sandbox.

use super::harness::*;
use serde_json::{json, Value};
use std::time::Instant;

async fn run(a: &Api, sb: &str, body: Value) -> Value {
    let r = a.post(&format!("/v1/sandboxes/{sb}/code"), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_runs_in_stateful_contexts() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("code", None).await;
    let (_, b) = server.admin().tenant("code-other", None).await;
    let sb = a.sandbox(json!({"image": "python-data"})).await;

    let first = run(&a, &sb, json!({"code": "x = 6 * 7\nprint('hi')\nx"})).await;
    assert_eq!(first["results"][0]["text"], "42", "{first}");
    assert_eq!(first["results"][0]["is_main_result"], true, "{first}");
    assert_eq!(first["stdout"], "hi\n");
    assert_eq!(first["execution_count"], 1);
    assert!(
        first["error"].is_null() && first["timed_out"] == false,
        "{first}"
    );
    // State lasts; errors come back as data.
    let again = run(&a, &sb, json!({"code": "x + 1"})).await;
    assert_eq!(again["results"][0]["text"], "43");
    let err = run(&a, &sb, json!({"code": "1 / 0"})).await;
    assert_eq!(err["error"]["name"], "ZeroDivisionError", "{err}");
    // A figure as PNG; env for one run only.
    let fig = run(
        &a,
        &sb,
        json!({"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"}),
    )
    .await;
    let png = fig["results"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r["png"].as_str())
        .unwrap_or_else(|| panic!("no PNG: {fig}"));
    assert!(png.starts_with("iVBORw0KGgo"), "{}", &png[..20]);
    let env = run(
        &a,
        &sb,
        json!({"code": "import os\nos.environ.get('RUN_VAR')", "env": {"RUN_VAR": "v"}}),
    )
    .await;
    // A string result is shown without its quotes, as E2B's interpreter does.
    assert_eq!(env["results"][0]["text"], "v");
    let after = run(
        &a,
        &sb,
        json!({"code": "os.environ.get('RUN_VAR') is None"}),
    )
    .await;
    assert_eq!(after["results"][0]["text"], "True");

    // Contexts: separate state, listed, restarted, removed.
    let c = a
        .post(&format!("/v1/sandboxes/{sb}/code/contexts"), json!({}))
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let ctx = c.body["id"].as_str().unwrap().to_string();
    run(&a, &sb, json!({"code": "y = 1", "context_id": ctx})).await;
    let y = run(&a, &sb, json!({"code": "y", "context_id": ctx})).await;
    assert_eq!(y["results"][0]["text"], "1");
    let no_y = run(&a, &sb, json!({"code": "y"})).await;
    assert_eq!(no_y["error"]["name"], "NameError", "{no_y}");
    let list = a.get(&format!("/v1/sandboxes/{sb}/code/contexts")).await;
    assert!(list.text.contains(&ctx), "{}", list.text);
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/code/contexts/{ctx}/restart"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let gone = run(&a, &sb, json!({"code": "y", "context_id": ctx})).await;
    assert_eq!(gone["error"]["name"], "NameError");
    let d = a
        .delete(&format!("/v1/sandboxes/{sb}/code/contexts/{ctx}"))
        .await;
    assert_eq!(d.status, 204, "{}", d.text);
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/code"),
            json!({"code": "1", "context_id": ctx}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // A run past its timeout is interrupted; the context serves at once.
    let slow = run(
        &a,
        &sb,
        json!({"code": "import time\ntime.sleep(60)", "timeout_secs": 2}),
    )
    .await;
    assert_eq!(slow["timed_out"], true, "{slow}");
    let t0 = Instant::now();
    let next = run(&a, &sb, json!({"code": "x"})).await;
    assert_eq!(next["results"][0]["text"], "42");
    assert!(t0.elapsed().as_secs() < 15, "{:?}", t0.elapsed());

    // The run after an error runs. Unless asked not to, ipykernel aborts
    // (answers without running) what reaches it within its
    // stop_on_error_timeout of an error, and the interpreter sends the next
    // run the moment the last is idle: a race lost about once in 50
    // interrupts at the default of 0 s. A kernel told to wait 5 s loses it
    // every time unless the interpreter opts out.
    let config = "import os\nd = os.environ['IPYTHONDIR'] + '/profile_default'\n\
                  os.makedirs(d, exist_ok=True)\n\
                  open(d + '/ipython_kernel_config.py', 'w')\
                  .write('c.Kernel.stop_on_error_timeout = 5.0\\n')";
    run(&a, &sb, json!({ "code": config })).await;
    let c = a
        .post(&format!("/v1/sandboxes/{sb}/code/contexts"), json!({}))
        .await;
    assert_eq!(c.status, 201, "{}", c.text);
    let ctx = &c.body["id"];
    let err = run(&a, &sb, json!({"code": "1 / 0", "context_id": ctx})).await;
    assert_eq!(err["error"]["name"], "ZeroDivisionError", "{err}");
    let next = run(&a, &sb, json!({"code": "6 * 7", "context_id": ctx})).await;
    assert_eq!(next["results"][0]["text"], "42", "{next}");

    // Streamed as it happens: the first line arrives while the code still
    // runs, and the run's lines end with end_of_execution.
    let resp = a
        .req(reqwest::Method::POST, &format!("/v1/sandboxes/{sb}/code"))
        .header("accept", "application/x-ndjson")
        .json(&json!({"code": "import time\nprint('early', flush=True)\ntime.sleep(2)\nprint('late')\nx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let t0 = Instant::now();
    let mut resp = resp;
    let mut text = String::new();
    let mut first_at = None;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        if first_at.is_none() && String::from_utf8_lossy(&chunk).contains("early") {
            first_at = Some(t0.elapsed());
        }
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first_at = first_at.unwrap_or_else(|| panic!("no early line: {text}"));
    assert!(
        first_at.as_millis() < 1500 && t0.elapsed().as_millis() >= 1500,
        "early at {first_at:?}, all at {:?}",
        t0.elapsed()
    );
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .filter(|k| k != "keepalive")
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("number_of_executions"),
        "{text}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("end_of_execution"),
        "{text}"
    );
    assert!(
        text.contains("\"text\": \"42\"") || text.contains("\"text\":\"42\""),
        "{text}"
    );

    // Bad input, and another tenant's sandbox.
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/code"),
            json!({"code": "1", "language": "cobol"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/code"),
            json!({"code": "1", "timeout_secs": 0}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = b
        .post(&format!("/v1/sandboxes/{sb}/code"), json!({"code": "1"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    // Every run is audited.
    let runs = audited(&a, "sandbox.exec").await;
    assert!(
        runs.iter().filter(|(_, t, _)| t.ends_with(":code")).count() >= 9,
        "{runs:?}"
    );
}

/// JavaScript, TypeScript (Deno's kernel), R and Bash beside Python, each
/// with its state, its values and per-run env that does not outlive the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_runs_in_other_languages() {
    let server = Server::start();
    let (_, a) = server.admin().tenant("code-langs", None).await;
    let sb = a
        .sandbox(json!({"image": "python-data", "limits": {"memory_mb": 1024}}))
        .await;
    let lang = |l: &str, code: &str| json!({"code": code, "language": l});

    let js = run(&a, &sb, lang("js", "console.log('js'); let n = 40; n + 2")).await;
    assert_eq!(js["stdout"], "js\n", "{js}");
    assert_eq!(js["results"][0]["text"], "42", "{js}");
    let js = run(&a, &sb, lang("javascript", "await Promise.resolve(n * 2)")).await;
    assert_eq!(
        js["results"][0]["text"], "80",
        "state and top-level await: {js}"
    );
    let ts = run(&a, &sb, lang("ts", "const s: string = 'typed'; s")).await;
    assert_eq!(ts["results"][0]["text"], "typed", "{ts}");
    let thrown = run(&a, &sb, lang("js", "throw new RangeError('too far')")).await;
    assert!(
        thrown["error"]["value"]
            .as_str()
            .is_some_and(|v| v.contains("too far")),
        "{thrown}"
    );

    let mut env = lang("r", "Sys.getenv('RUN_VAR')");
    env["env"] = json!({"RUN_VAR": "in R"});
    let r = run(&a, &sb, env).await;
    assert_eq!(r["results"][0]["text"], "[1] \"in R\"", "{r}");
    let r = run(&a, &sb, lang("r", "Sys.getenv('RUN_VAR', unset = 'gone')")).await;
    assert_eq!(
        r["results"][0]["text"], "[1] \"gone\"",
        "env outlived the run: {r}"
    );

    run(&a, &sb, lang("bash", "cd /tmp && COUNT=41")).await;
    let mut env = lang("bash", "echo $((COUNT + 1)) $PWD $RUN_VAR");
    env["env"] = json!({"RUN_VAR": "it's \"quoted\" $HOME"});
    let bash = run(&a, &sb, env).await;
    assert_eq!(bash["stdout"], "42 /tmp it's \"quoted\" $HOME\n", "{bash}");
    let bash = run(&a, &sb, lang("bash", "echo ${RUN_VAR-unset}")).await;
    assert_eq!(bash["stdout"], "unset\n", "{bash}");

    // A context of its own language; the defaults listed first.
    let r = a
        .post(
            &format!("/v1/sandboxes/{sb}/code/contexts"),
            json!({"language": "r"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["language"], "r");
    let listed = a.get(&format!("/v1/sandboxes/{sb}/code/contexts")).await;
    let langs: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["language"].as_str())
        .collect();
    assert_eq!(&langs[..2], ["python", "javascript"], "{}", listed.text);
    assert!(langs.contains(&"r"), "{}", listed.text);

    // Refused: a language with no kernel, a variable name no shell takes.
    for body in [
        lang("java", "1"),
        json!({"code": "1", "env": {"NOT-A-NAME": "x"}}),
    ] {
        let r = a.post(&format!("/v1/sandboxes/{sb}/code"), body).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
}

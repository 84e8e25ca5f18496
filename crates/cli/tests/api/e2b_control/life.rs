//! One sandbox from create to kill: its answers, timeout, connect,
//! metrics and logs.

use super::*;

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
    assert_eq!(sb["envdVersion"], "0.6.4", "{sb}");
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
            &json!("0.6.4")
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

//! Image builds through `/v1/images` and `warden image build`: steps run in
//! sandboxes (apt from Debian's archive, pip from an index on loopback
//! reached through the build's egress allowlist, an uploaded file, a
//! shell command), each cached by its key so a rebuild reruns only what
//! changed; the image starts sandboxes on both tiers; another tenant can
//! neither see nor start it; a step cannot plant a link that leads a
//! later step's writes out of the image.

use crate::harness::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A PEP 503 index on loopback holding one tiny wheel, `warden_tiny`.
struct Index {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn index() -> Index {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Command::new("python3")
        .arg("-c")
        .arg(
            r#"import sys, zipfile, os
d = sys.argv[1]
with zipfile.ZipFile(os.path.join(d, "warden_tiny-0.1-py3-none-any.whl"), "w") as z:
    z.writestr("warden_tiny/__init__.py", "VALUE = 'from the index'\n")
    z.writestr("warden_tiny-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: warden-tiny\nVersion: 0.1\n")
    z.writestr("warden_tiny-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: warden\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("warden_tiny-0.1.dist-info/RECORD", "")
os.makedirs(os.path.join(d, "simple", "warden-tiny"))
with open(os.path.join(d, "simple", "warden-tiny", "index.html"), "w") as f:
    f.write('<a href="../../warden_tiny-0.1-py3-none-any.whl">warden_tiny-0.1-py3-none-any.whl</a>')
"#,
        )
        .arg(dir.path())
        .status()
        .expect("python3");
    assert!(made.success());
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(
            "import functools, http.server, sys\n\
             h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
             s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), h)\n\
             print(s.server_address[1], flush=True)\n\
             s.serve_forever()",
        )
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port = line.trim().parse().expect("a port");
    Index {
        child,
        port,
        _dir: dir,
    }
}

/// Builds and returns every event of the answer.
async fn build(a: &Api, body: Value) -> Vec<Value> {
    let resp = a
        .req(reqwest::Method::POST, "/v1/images")
        .json(&body)
        .send()
        .await
        .expect("build request");
    let status = resp.status();
    let text = resp.text().await.expect("build answer");
    assert!(status.is_success(), "{status}: {text}");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect()
}

fn done(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "done")
        .unwrap_or_else(|| panic!("no done event: {events:?}"))
}

fn cached(events: &[Value]) -> Vec<bool> {
    events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["cached"] == json!(true))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_builds_in_cached_steps_and_starts_sandboxes_on_both_tiers() {
    let idx = index();
    let port = idx.port.to_string();
    // Debian's archive as this machine resolves it (the egress proxy only
    // takes public addresses on its own; the operator's map says where).
    let deb = tokio::net::lookup_host("deb.debian.org:80")
        .await
        .expect("deb.debian.org resolves")
        .next()
        .expect("an address");
    let resolve = format!("deb.debian.org={deb},pypi.test:{port}=127.0.0.1:{port}");
    let allow = format!("deb.debian.org,pypi.test:{port}");
    let index_url = format!("http://pypi.test:{port}/simple");
    let server = Server::start_env(
        RuntimeDirs::private(),
        &[
            ("WARDEN_EGRESS_RESOLVE", &resolve),
            ("WARDEN_BUILDS_ALLOW_HOSTS", &allow),
            ("WARDEN_BUILDS_PIP_INDEX_URL", &index_url),
        ],
    );
    let (_, a) = server
        .admin()
        .tenant("img-a", Some(json!({"max_images": 1})))
        .await;
    let (_, b) = server.admin().tenant("img-b", None).await;
    let script = a
        .upload("hello.py", b"print('hello from the image')\n")
        .await;
    let steps = json!([
        {"apt": ["jq"]},
        {"pip": ["warden-tiny"]},
        {"file": {"file_id": script["id"], "path": "/opt/tools/hello.py", "mode": 0o755}},
        {"run": "echo built > /etc/warden-built && rm /usr/share/doc/jq/copyright && ln -s /etc /opt/tools/up"},
    ]);
    let first = build(
        &a,
        json!({"name": "tools", "base": "python-data", "steps": steps}),
    )
    .await;
    let d = done(&first);
    assert_eq!(cached(&first), [false, false, false, false], "{first:?}");
    assert_eq!(d["steps_run"], 4);
    let image = &d["image"];
    assert_eq!(image["owner"], "tenant");
    assert_eq!(image["layers"].as_array().map(Vec::len), Some(4));
    let packages: Vec<&str> = image["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        packages.iter().any(|p| p.starts_with("jq=")),
        "{packages:?}"
    );
    assert!(packages.contains(&"warden-tiny=0.1"), "{packages:?}");

    // The image starts sandboxes on both tiers with what the steps made.
    for tier in ["native", "gvisor"] {
        let sb = a
            .sandbox(json!({"image": "tools", "isolation": tier}))
            .await;
        let out = a
            .ok(
                &sb,
                "jq -n 1; python3 -c 'import warden_tiny; print(warden_tiny.VALUE)'; \
                 /opt/tools/hello.py 2>/dev/null || python3 /opt/tools/hello.py; cat /etc/warden-built; \
                 test -e /usr/share/doc/jq/copyright && echo BACK || echo deleted; \
                 readlink /opt/tools/up",
            )
            .await;
        assert_eq!(
            out, "1\nfrom the index\nhello from the image\nbuilt\ndeleted\n/etc\n",
            "{tier}"
        );
        a.delete(&format!("/v1/sandboxes/{sb}")).await;
    }

    // E2B's `Sandbox.create("tools")` names it as a template; not B's.
    let e2b = |key: &str| {
        reqwest::Client::new()
            .post(format!("{}/v2/sandboxes", server.url))
            .header("X-API-Key", key.to_string())
            .json(&json!({"templateID": "tools", "timeout": 60}))
    };
    let r = e2b(&a.token).send().await.expect("e2b create");
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.expect("json");
    let sb = created["sandboxID"].as_str().expect("an id").to_string();
    assert_eq!(a.ok(&sb, "cat /etc/warden-built").await, "built\n");
    a.delete(&format!("/v1/sandboxes/{sb}")).await;
    let r = e2b(&b.token).send().await.expect("e2b create");
    assert_eq!(r.status().as_u16(), 400);

    // A rebuild reuses every step; changing the last reruns only it.
    let again = build(
        &a,
        json!({"name": "tools", "base": "python-data", "steps": steps}),
    )
    .await;
    assert_eq!(cached(&again), [true, true, true, true]);
    let d2 = done(&again);
    assert_eq!(d2["steps_run"], 0);
    assert_eq!(d2["image"]["content_sha256"], image["content_sha256"]);
    eprintln!(
        "image build: first {} ms, cached rebuild {} ms",
        d["elapsed_ms"], d2["elapsed_ms"]
    );
    let mut changed = steps.clone();
    changed[3] = json!({"run": "echo rebuilt > /etc/warden-built"});
    let third = build(
        &a,
        json!({"name": "tools", "base": "python-data", "steps": changed}),
    )
    .await;
    assert_eq!(cached(&third), [true, true, true, false]);
    assert_ne!(
        done(&third)["image"]["content_sha256"],
        image["content_sha256"]
    );
    let sb = a.sandbox(json!({"image": "tools"})).await;
    assert_eq!(
        a.ok(
            &sb,
            "cat /etc/warden-built; test -e /opt/tools/up && echo LINK || echo nolink"
        )
        .await,
        "rebuilt\nnolink\n"
    );

    // Another tenant cannot see, start, build on or delete it.
    assert_eq!(b.get("/v1/images/tools").await.status.as_u16(), 404);
    let listed = b.get("/v1/images").await.body;
    assert!(!listed.to_string().contains("\"tools\""), "{listed}");
    let r = b.post("/v1/sandboxes", json!({"image": "tools"})).await;
    refused(&r, 400, "bad_request");
    let r = b
        .post(
            "/v1/images",
            json!({"name": "mine", "base": "tools", "steps": [{"run": "true"}]}),
        )
        .await;
    refused(&r, 400, "bad_request");
    assert_eq!(b.delete("/v1/images/tools").await.status.as_u16(), 404);
    // B builds on an image of its own: the derived one keeps its layers.
    let own = build(
        &b,
        json!({"name": "tools", "base": "python-data", "steps": [{"run": "mkdir -p /opt && echo b > /opt/b"}]}),
    )
    .await;
    assert_eq!(done(&own)["steps_run"], 1);
    let derived = build(
        &b,
        json!({"name": "derived", "base": "tools", "steps": [{"run": "cp /opt/b /opt/c"}]}),
    )
    .await;
    let layers = &done(&derived)["image"]["layers"];
    assert_eq!(layers.as_array().map(Vec::len), Some(2), "{derived:?}");
    assert_eq!(layers[0], done(&own)["image"]["layers"][0]);
    let on_derived = b.sandbox(json!({"image": "derived"})).await;
    assert_eq!(b.ok(&on_derived, "cat /opt/b /opt/c").await, "b\nb\n");
    b.delete(&format!("/v1/sandboxes/{on_derived}")).await;
    // A's image of the same name is still A's own.
    let on_a = a.sandbox(json!({"image": "tools"})).await;
    assert_eq!(
        a.ok(&on_a, "cat /etc/warden-built; test -e /opt/b || echo none")
            .await,
        "rebuilt\nnone\n"
    );
    a.delete(&format!("/v1/sandboxes/{on_a}")).await;
    // Nor can a tenant delete or shadow the operator's image.
    refused(&a.delete("/v1/images/python-data").await, 403, "forbidden");
    let r = a
        .post(
            "/v1/images",
            json!({"name": "python-data", "base": "python-data", "steps": [{"run": "true"}]}),
        )
        .await;
    refused(&r, 400, "bad_request");

    // A failing step leaves the image as it was.
    let failed = build(
        &a,
        json!({"name": "tools", "base": "python-data", "steps": [{"run": "exit 3"}]}),
    )
    .await;
    let err = failed
        .iter()
        .find(|e| e["event"] == "error")
        .expect("an error event");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("code 3"),
        "{err}"
    );
    let still = a.get("/v1/images/tools").await.body;
    assert_eq!(
        still["content_sha256"],
        done(&third)["image"]["content_sha256"]
    );

    // Deleted: gone from the list, its sandbox keeps running on it.
    let r = a.delete("/v1/images/tools").await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    assert_eq!(a.ok(&sb, "cat /etc/warden-built").await, "rebuilt\n");
    refused(
        &a.post("/v1/sandboxes", json!({"image": "tools"})).await,
        400,
        "bad_request",
    );
    a.delete(&format!("/v1/sandboxes/{sb}")).await;
    let audit = audited(&a, "image.build").await;
    assert_eq!(audit.len(), 4, "{audit:?}");

    // The CLI builds from a recipe file, uploading a `file` step's source.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("note.txt"), "from the recipe\n").expect("write");
    let recipe = dir.path().join("image.toml");
    std::fs::write(
        &recipe,
        "base = \"python-data\"\n\
         [[steps]]\nfile = { src = \"note.txt\", path = \"/opt/note.txt\" }\n\
         [[steps]]\nrun = \"cp /opt/note.txt /opt/copy.txt\"\n",
    )
    .expect("write");
    let recipe = recipe.to_string_lossy().into_owned();
    let args = ["image", "build", "noted", "-f", recipe.as_str()];
    for runs in ["2 of its steps run", "0 of its steps run"] {
        let out = crate::cli::warden(&server, Some(&a.token), &args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(
            stdout.contains("built noted") && stdout.contains(runs),
            "{stdout}{stderr}"
        );
    }
    // One image is all this tenant may keep: another is refused before
    // any step runs.
    let r = a
        .post(
            "/v1/images",
            json!({"name": "extra", "base": "python-data", "steps": [{"run": "true"}]}),
        )
        .await;
    refused(&r, 429, "quota_exceeded");
    let list = crate::cli::warden(&server, Some(&a.token), &["image", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("noted"));
    let sb = a.sandbox(json!({"image": "noted"})).await;
    assert_eq!(a.ok(&sb, "cat /opt/copy.txt").await, "from the recipe\n");
    a.delete(&format!("/v1/sandboxes/{sb}")).await;
    assert!(cgroups_left(&server).is_empty());
}

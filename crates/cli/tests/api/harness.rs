//! A real `warden serve` on a loopback port, in its own data directory, and
//! a small JSON client. The server dies with the test process (PDEATHSIG),
//! and is stopped (SIGTERM: its sandboxes destroyed) when dropped.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const STATE_DIR: &str = "/run/warden-test";

/// What one server's runtime keeps apart from the others': its cgroup
/// parent, and (for servers that get killed and restarted, whose leftovers
/// are reaped by slot) its own state directory.
#[derive(Clone)]
pub struct RuntimeDirs {
    pub cgroup_parent: String,
    pub state_dir: String,
}

impl RuntimeDirs {
    /// Shared slots (so sandboxes of concurrent test servers never share
    /// host uids), a cgroup parent of its own.
    pub fn shared() -> RuntimeDirs {
        RuntimeDirs {
            cgroup_parent: fresh_parent(),
            state_dir: STATE_DIR.into(),
        }
    }

    /// Slots of its own too: a restarted server reaps a killed one's
    /// cgroups by taking their slots, which another test's server could be
    /// holding in a shared directory.
    pub fn private() -> RuntimeDirs {
        let cgroup_parent = fresh_parent();
        RuntimeDirs {
            state_dir: format!("/run/{cgroup_parent}"),
            cgroup_parent,
        }
    }
}

/// A cgroup parent of its own per server, so leak checks see only its
/// sandboxes.
fn fresh_parent() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "warden-api-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub cgroup_parent: String,
    dirs: RuntimeDirs,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(RuntimeDirs::shared())
    }

    pub fn start_with(dirs: RuntimeDirs) -> Server {
        Server::start_env(dirs, &[])
    }

    /// A server with extra environment (configuration), kept across
    /// restarts.
    pub fn start_env(dirs: RuntimeDirs, env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, &dirs, env);
        s.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s._tmp = Some(tmp);
        s
    }

    /// Another server process on the same data directory and cgroup parent
    /// (the previous one must be stopped or killed first).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let next = Server::start_in(&self.data_dir, &self.dirs, &env);
        let mut next = std::mem::ManuallyDrop::new(next);
        self.child = next.child.take();
        self.url = std::mem::take(&mut next.url);
        self.log = next.log.clone();
    }

    /// Starts a server on `dir` (which the caller keeps) under a given
    /// cgroup parent, with extra environment.
    pub fn start_in(dir: &Path, dirs: &RuntimeDirs, env: &[(&str, &str)]) -> Server {
        Server::start_limited(dir, dirs, env, None)
    }

    /// A server started with the open-files limit `(soft, hard)`, as a
    /// service manager would set it (e.g. systemd's soft 1024).
    pub fn start_nofile(dirs: RuntimeDirs, env: &[(&str, &str)], nofile: (u64, u64)) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_limited(&dir, &dirs, env, Some(nofile));
        s._tmp = Some(tmp);
        s
    }

    fn start_limited(
        dir: &Path,
        dirs: &RuntimeDirs,
        env: &[(&str, &str)],
        nofile: Option<(u64, u64)>,
    ) -> Server {
        let cgroup_parent = dirs.cgroup_parent.as_str();
        let mut cmd = Command::new(warden_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("WARDEN_ADMIN_TOKEN", ADMIN)
            .env("WARDEN_STATE_DIR", &dirs.state_dir)
            .env("WARDEN_CGROUP_PARENT", cgroup_parent)
            // Nothing pre-started, so `cgroups_left` sees only sandboxes'
            // groups (the pool is the runtime tests' business).
            .env("WARDEN_PRESTART", "0")
            // Nor booted ahead on the gVisor tier (its pool has tests of
            // its own: tiers.rs, gvisor_pool.rs).
            .env("WARDEN_GVISOR_PRESTART", "0")
            .env("WARDEN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if let Some((soft, hard)) = nofile {
                    let lim = libc::rlimit {
                        rlim_cur: soft,
                        rlim_max: hard,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn warden serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("warden: listening on ") {
                    let _ = tx.send(addr.to_string());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child: Some(child),
            url,
            data_dir: dir.to_path_buf(),
            cgroup_parent: cgroup_parent.to_string(),
            dirs: dirs.clone(),
            env: Vec::new(),
            _tmp: None,
            log,
        }
    }

    /// The server's process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn admin(&self) -> Api {
        Api::new(&self.url, ADMIN)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's log once it holds `needle` (lines written by the
    /// server's background work arrive in their own time), or as it is
    /// after `limit`.
    pub async fn log_with(&self, needle: &str, limit: Duration) -> String {
        let until = std::time::Instant::now() + limit;
        loop {
            let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
            if log.contains(needle) || std::time::Instant::now() >= until {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        // The (now empty) parent groups; a leaked sandbox keeps its parent,
        // and `cgroups_left` shows it.
        for root in cgroup_roots() {
            let _ = std::fs::remove_dir(root.join(&self.cgroup_parent));
        }
        if self.dirs.state_dir != STATE_DIR {
            let _ = std::fs::remove_dir_all(&self.dirs.state_dir);
        }
    }
}

/// Every cgroup hierarchy mounted here (v1 controllers, the v2 tree).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            // Combined hierarchies also appear as symlinks (cpu -> cpu,cpuacct).
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                roots.push(e.path());
            }
        }
    }
    roots
}

/// A JSON client holding one bearer token.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The error code of an error answer (and checks the error shape).
    pub fn code(&self) -> &str {
        let e = &self.body["error"];
        assert!(
            e["code"].is_string() && e["message"].is_string(),
            "not the error shape: {} {}",
            self.status,
            self.text
        );
        e["code"].as_str().unwrap_or_default()
    }
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.to_string(),
            token: token.to_string(),
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api::new(&self.base, token)
    }

    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.req(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.req(Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.req(Method::POST, path).json(&body)).await
    }

    pub async fn put_bytes(&self, path: &str, body: Vec<u8>) -> Reply {
        self.send(self.req(Method::PUT, path).body(body)).await
    }

    /// Creates a tenant (optionally with quotas) and a key; returns the
    /// tenant id and a client holding the key.
    pub async fn tenant(&self, name: &str, quotas: Option<Value>) -> (String, Api) {
        let mut body = json!({ "name": name });
        if let Some(q) = quotas {
            body["quotas"] = q;
        }
        let r = self.post("/v1/tenants", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        let k = self
            .post(&format!("/v1/tenants/{id}/keys"), json!({}))
            .await;
        assert_eq!(k.status, 201, "{}", k.text);
        (id, self.with_token(k.body["key"].as_str().unwrap()))
    }

    pub async fn upload(&self, name: &str, bytes: &[u8]) -> Value {
        let enc: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let r = self
            .send(
                self.req(Method::POST, &format!("/v1/files?name={enc}"))
                    .body(bytes.to_vec()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    pub async fn sandbox(&self, body: Value) -> String {
        let r = self.post("/v1/sandboxes", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Runs a shell line (JSON mode) and returns the answer.
    pub async fn sh(&self, sandbox: &str, line: &str) -> Value {
        let r = self
            .post(
                &format!("/v1/sandboxes/{sandbox}/exec"),
                json!({ "shell": line }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Stdout of a shell line that must succeed.
    pub async fn ok(&self, sandbox: &str, line: &str) -> String {
        let v = self.sh(sandbox, line).await;
        assert_eq!(v["exit_code"], 0, "{line:?}: {v}");
        v["stdout"].as_str().unwrap_or_default().to_string()
    }
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
    pub at: Instant,
}

/// Reads an SSE response to its end, timestamping each event.
pub async fn read_sse(resp: reqwest::Response) -> Vec<SseEvent> {
    use futures::StreamExt;
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("sse chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // keep-alive comment
            }
            out.push(SseEvent {
                event,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
                at: Instant::now(),
            });
        }
    }
    out
}

/// A key in E2B's spelling (`e2b_` and the key's bytes in hex), as
/// `warden key create` also gives it and newer E2B SDKs insist on.
pub fn e2b_spelling(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("e2b_{hex}")
}

/// Decodes a stdout/stderr event's payload.
pub fn b64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v["data"].as_str().unwrap_or_default())
        .expect("base64")
}

/// Sandbox cgroups under a server's parent (each live sandbox has one).
pub fn cgroups_left(server: &Server) -> Vec<String> {
    let mut out = Vec::new();
    for root in cgroup_roots() {
        let dir = root.join(&server.cgroup_parent);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out
}

/// Asserts an error answer's status and code; returns its message.
pub fn refused(r: &Reply, status: u16, code: &str) -> String {
    assert_eq!((r.status.as_u16(), r.code()), (status, code), "{}", r.text);
    r.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// As [`audited`], once there are at least `n` of them (or after 10 s):
/// for an action the server takes on its own, whose entry is written just
/// after the sandbox's new state, which a poll can see first.
pub async fn audited_at_least(a: &Api, action: &str, n: usize) -> Vec<(String, String, String)> {
    let started = std::time::Instant::now();
    loop {
        let got = audited(a, action).await;
        if got.len() >= n || started.elapsed() > std::time::Duration::from_secs(10) {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The tenant's audit entries with this action, as (actor, target, outcome).
pub async fn audited(a: &Api, action: &str) -> Vec<(String, String, String)> {
    let r = a.get("/v1/audit?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| (s(e, "actor"), s(e, "target"), s(e, "outcome")))
        .collect()
}

//! The server's own resources under attack: connections that never finish
//! a request, and a node out of room for sandboxes or file descriptors.
//! Each attack is tried on a real `warden serve` (its memory under attack
//! is in `server_memory.rs`).

use crate::harness::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The soft and hard open-files limits of a process.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let v: Vec<&str> = line.split_whitespace().collect();
    (v[3].to_string(), v[4].to_string())
}

/// This test process's own hard limit, with the soft one raised to it (it
/// opens more sockets than a soft 1024 allows).
fn raise_own_nofile() -> u64 {
    // SAFETY: plain get/setrlimit on this process.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        lim.rlim_max
    }
}

fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Opens `n` connections that each send part of a request head and stall.
async fn stalled(server: &Server, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr(server)).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        out.push(s);
    }
    out
}

/// When the server closed the connection (EOF or reset), within `limit`.
async fn closed_at(mut s: TcpStream, limit: Duration) -> Option<Instant> {
    let mut buf = [0u8; 256];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()
}

/// One complete request on a raw connection; the status line's code.
async fn raw_get(s: &mut TcpStream, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_neither_hold_the_api_down_nor_stay_open() {
    let hard = raise_own_nofile();
    assert!(
        hard >= 4096,
        "this test needs a hard open-files limit ≥ 4096"
    );
    // Started as a systemd service would be: soft 1024.
    let server = Server::start_nofile(
        RuntimeDirs::shared(),
        &[("WARDEN_HEADER_TIMEOUT_SECS", "3")],
        (1024, hard),
    );
    let (soft, hard_seen) = nofile(server.pid());
    assert_eq!(soft, hard_seen, "the server raises its soft limit");
    let conns = stalled(&server, 1100).await;
    // Before the fix the accept loop failed with EMFILE from here on.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let t0 = Instant::now();
    let r = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("/healthz answers while 1,100 requests stall");
    assert_eq!(r.status(), 200);
    eprintln!("/healthz beside 1,100 stalled requests: {:?}", t0.elapsed());
    // The control: a head sent in two parts, within the deadline, is served.
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    slow.write_all(b"Host: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = slow.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    // Every stalled one is closed once its head is overdue.
    let closed = futures::future::join_all(
        conns
            .into_iter()
            .map(|s| closed_at(s, Duration::from_secs(30))),
    )
    .await;
    let open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(open, 0, "{open} stalled connections were never closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_client_waits_for_a_free_slot() {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_MAX_CONNECTIONS", "20"),
            ("WARDEN_HEADER_TIMEOUT_SECS", "2"),
        ],
    );
    let began = Instant::now();
    let conns = stalled(&server, 20).await;
    let watchers: Vec<_> = conns
        .into_iter()
        .map(|s| tokio::spawn(closed_at(s, Duration::from_secs(30))))
        .collect();
    // The 21st is served only once a stalled one was closed.
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    let code = raw_get(&mut s, "/healthz").await;
    let answered = Instant::now();
    assert_eq!(code, "200");
    let mut first_close = None;
    for w in watchers {
        let at = w
            .await
            .unwrap()
            .expect("every stalled connection is closed");
        first_close = Some(first_close.map_or(at, |f: Instant| f.min(at)));
    }
    // Every slot is held until the first stalled request's 2 s header
    // timeout closes it, so the 21st cannot be answered before that.
    let waited = answered.duration_since(began);
    assert!(
        waited >= Duration::from_millis(1500),
        "the 21st connection was served after {waited:?}, while 20 held every slot"
    );
    // And a stalled one was closed by then. (A watcher notes the close when
    // its task runs, which on a busy machine can be a moment after the 21st
    // got its answer: hence the margin.)
    assert!(
        first_close.unwrap() <= answered + Duration::from_millis(250),
        "the 21st connection was served while 20 held every slot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_but_a_long_request_is_never_cut() {
    let server = Server::start_env(
        RuntimeDirs::shared(),
        &[
            ("WARDEN_IDLE_TIMEOUT_SECS", "2"),
            ("WARDEN_HEADER_TIMEOUT_SECS", "2"),
        ],
    );
    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
    assert_eq!(raw_get(&mut s, "/healthz").await, "200");
    // Kept alive, then idle: closed.
    assert!(
        closed_at(s, Duration::from_secs(20)).await.is_some(),
        "an idle kept-alive connection stays open"
    );
    // A request that takes longer than both timeouts, silent meanwhile.
    let (_, a) = server.admin().tenant("slow-request", None).await;
    let sb = a.sandbox(json!({})).await;
    let v = a.sh(&sb, "sleep 5; echo done").await;
    assert_eq!(v["stdout"], "done\n", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_answers_503_naming_its_capacity() {
    let server = Server::start_env(RuntimeDirs::shared(), &[("WARDEN_MAX_SANDBOXES", "2")]);
    let (_, a) = server.admin().tenant("fills-the-node", None).await;
    let first = a.sandbox(json!({})).await;
    a.sandbox(json!({})).await;
    let r = a.post("/v1/sandboxes", json!({})).await;
    let msg = refused(&r, 503, "capacity");
    assert!(msg.contains("max_sandboxes") && msg.contains("2"), "{msg}");
    // Review jobs count too: a job waits (retried), it does not fail.
    assert_eq!(
        a.delete(&format!("/v1/sandboxes/{first}")).await.status,
        204
    );
    a.sandbox(json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_answers_503_not_500() {
    // Soft and hard limit both 1024: the server cannot raise it (and a
    // sandbox's init needs a hard limit of 1024 for its own).
    let server = Server::start_nofile(RuntimeDirs::shared(), &[], (1024, 1024));
    let (_, a) = server
        .admin()
        .tenant(
            "exhausts-fds",
            Some(json!({"max_sandboxes": 1000, "max_memory_bytes": 1u64 << 50, "max_cpus": 1000, "max_pids": 1u64 << 40})),
        )
        .await;
    let mut made = 0;
    let refusal = loop {
        let r = a
            .post("/v1/sandboxes", json!({"limits": {"memory_mb": 64}}))
            .await;
        if r.status != 201 {
            break r;
        }
        made += 1;
        assert!(made < 1000, "1024 descriptors never ran out");
    };
    // Before the fix: 500 "starting a sandbox failed".
    let log = server.log.lock().unwrap().clone();
    assert_eq!(refusal.status, 503, "{}\n{log}", refusal.text);
    let msg = refused(&refusal, 503, "capacity");
    assert!(msg.contains("file descriptors"), "{msg}");
    assert!(
        made > 100,
        "only {made} sandboxes started under 1024 descriptors"
    );
    eprintln!("{made} sandboxes under an open-files limit of 1024");
    // The node is usable again once sandboxes go.
    let list = a.get("/v1/sandboxes?limit=1").await;
    let id = list.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(a.delete(&format!("/v1/sandboxes/{id}")).await.status, 204);
    a.sandbox(json!({"limits": {"memory_mb": 64}})).await;
}

/// Whether this process may raise hard limits (CAP_SYS_RESOURCE, which
/// some containers' root lacks).
fn may_raise_hard_limits() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    eff & (1 << CAP_SYS_RESOURCE) != 0
}

/// A hard limit on open files below what each sandbox's processes get
/// (1024) made every create answer 500, since a sandbox cannot raise it.
/// Now the server raises it at start-up where it may (root with
/// CAP_SYS_RESOURCE) and sandboxes start; where it may not, start-up stops
/// at once, naming the limit and how to raise it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_open_files_limit_below_a_sandboxs_is_raised_or_refused_at_start_up() {
    if may_raise_hard_limits() {
        let server = Server::start_nofile(RuntimeDirs::shared(), &[], (256, 256));
        let log = server.log.lock().unwrap().clone();
        assert!(log.contains("hard limit raised from 256 to 1024"), "{log}");
        let (_, a) = server.admin().tenant("low-hard-limit", None).await;
        let sb = a.sandbox(json!({})).await;
        assert_eq!(a.ok(&sb, "ulimit -n").await, "1024\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(warden_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .env("WARDEN_ADMIN_TOKEN", ADMIN)
        .env("WARDEN_CGROUP_PARENT", "warden-api-low-nofile")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &lim) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warden serve kept running under a hard limit of 256");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("hard limit on open files is 256, below the 1024")
            && err.contains("LimitNOFILE"),
        "{err}"
    );
    assert!(!err.contains("listening on"), "{err}");
    // It stopped before making anything of the runtime's.
    for root in cgroup_roots() {
        assert!(!root.join("warden-api-low-nofile").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_sandboxes_start_under_a_soft_limit_of_1024() {
    let hard = raise_own_nofile();
    let server = Server::start_nofile(RuntimeDirs::shared(), &[], (1024, hard.max(1024)));
    let (_, a) = server
        .admin()
        .tenant(
            "a-thousand",
            Some(json!({"max_sandboxes": 1000, "max_memory_bytes": 1u64 << 50, "max_cpus": 1000, "max_pids": 1u64 << 40})),
        )
        .await;
    let t0 = Instant::now();
    let ids: Vec<Value> = futures::stream::iter(0..1000)
        .map(|_| {
            let a = a.clone();
            async move {
                let r = a
                    .post("/v1/sandboxes", json!({"limits": {"memory_mb": 64}}))
                    .await;
                assert_eq!(r.status, 201, "{}", r.text);
                r.body["id"].clone()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    eprintln!("1,000 idle sandboxes started in {:?}", t0.elapsed());
    assert_eq!(ids.len(), 1000);
    futures::stream::iter(ids)
        .for_each_concurrent(8, |id| {
            let a = a.clone();
            async move {
                let r = a
                    .delete(&format!("/v1/sandboxes/{}", id.as_str().unwrap()))
                    .await;
                assert_eq!(r.status, 204, "{}", r.text);
            }
        })
        .await;
    assert!(cgroups_left(&server).is_empty());
}

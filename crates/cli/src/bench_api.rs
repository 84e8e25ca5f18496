//! `warden bench api`: create -> exec `/bin/true` -> destroy over HTTP on
//! loopback against an in-process `warden serve`, sequentially (p50/p99)
//! and with concurrent clients (throughput), next to the same cycle
//! through the runtime directly in the same process (the baseline the API
//! adds its cost to). Prints figures; asserts nothing.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use warden_protocol::{Client, ExecRequest};
use warden_runtime::Runtime;
use warden_spec::SandboxSpec;

use crate::bench::{bar, ms, percentile};

const ADMIN: &str = "bench-admin-token";

struct Http {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Http {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// One create -> exec /bin/true -> destroy cycle.
    async fn cycle(&self) -> Result<Duration> {
        let t = Instant::now();
        let sb = self
            .call(reqwest::Method::POST, "/v1/sandboxes", Some(json!({})))
            .await?;
        let id = sb["id"].as_str().context("no sandbox id")?.to_string();
        let out = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/sandboxes/{id}/exec"),
                Some(json!({"command": ["/bin/true"]})),
            )
            .await?;
        if out["exit_code"] != 0 {
            bail!("/bin/true failed: {out}");
        }
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/sandboxes/{id}"),
            None,
        )
        .await?;
        Ok(t.elapsed())
    }
}

async fn direct(n: usize) -> Result<Vec<Duration>> {
    let rt = crate::runtime::native()?;
    let spec = SandboxSpec::default();
    let mut out = Vec::with_capacity(n);
    let pb = bar("direct", n);
    for _ in 0..n {
        let t = Instant::now();
        let mut sb = rt.start(&spec)?;
        let control = sb.take_control().context("no control channel")?;
        control.set_nonblocking(true)?;
        let client = Client::connect(tokio::net::UnixStream::from_std(control)?).await?;
        client
            .exec_collect(ExecRequest::argv(["/bin/true"]))
            .await?;
        drop(client);
        tokio::task::spawn_blocking(move || sb.destroy()).await??;
        out.push(t.elapsed());
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

pub async fn run(rounds: usize, concurrency: usize, warmup: usize) -> Result<()> {
    if rounds == 0 || concurrency == 0 {
        bail!("--rounds and --concurrency must be at least 1");
    }
    let data = tempfile::tempdir()?;
    let mut cfg = warden_server::config::Config::load(None)?;
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.data_dir = data.path().to_path_buf();
    cfg.admin_token = Some(ADMIN.into());
    let init = crate::runtime::init_path()?;
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(warden_server::serve(
        cfg,
        init,
        move |a| {
            let _ = addr_tx.send(a);
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let addr = addr_rx.await.context("the server did not start")?;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let admin = Http {
        client: client.clone(),
        base: base.clone(),
        token: ADMIN.into(),
    };
    let quotas = json!({"max_sandboxes": 1000, "max_memory_bytes": 1u64 << 40,
                        "max_storage_bytes": 1u64 << 30, "max_file_bytes": 1u64 << 30});
    let t = admin
        .call(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({"name": "bench", "quotas": quotas})),
        )
        .await?;
    let tid = t["id"].as_str().context("no tenant id")?;
    let k = admin
        .call(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tid}/keys"),
            Some(json!({})),
        )
        .await?;
    let http = std::sync::Arc::new(Http {
        client,
        base,
        token: k["key"].as_str().context("no key")?.to_string(),
    });
    for _ in 0..warmup {
        http.cycle().await?;
    }
    let base_line = direct(rounds.min(300)).await?;
    let pb = bar("api", rounds);
    let mut seq = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        seq.push(http.cycle().await?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let pb = bar(&format!("api x{concurrency}"), rounds);
    let t0 = Instant::now();
    let per = rounds.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let http = http.clone();
        let pb = pb.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::with_capacity(per);
            for _ in 0..per {
                v.push(http.cycle().await?);
                pb.inc(1);
            }
            Ok::<_, anyhow::Error>(v)
        }));
    }
    let mut conc = Vec::new();
    for t in tasks {
        conc.extend(t.await??);
    }
    let wall = t0.elapsed();
    pb.finish_and_clear();
    let _ = stop_tx.send(());
    server.await??;

    println!("create -> exec /bin/true -> destroy ({rounds} rounds, {warmup} warm-up)");
    let row = |name: &str, v: &[Duration]| {
        println!(
            "{name:<36} p50 {:>7.2} ms   p99 {:>7.2} ms",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99))
        )
    };
    row("runtime, in process (baseline)", &base_line);
    row("HTTP API, 1 client", &seq);
    row(&format!("HTTP API, {concurrency} clients"), &conc);
    println!(
        "{:<36} {:.0} cycles/s",
        format!("throughput, {concurrency} clients"),
        conc.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "API / baseline (p50)                 {:.2}x   (targets: p50 <= 10 ms, p99 <= 25 ms)",
        percentile(&seq, 0.5).as_secs_f64() / percentile(&base_line, 0.5).as_secs_f64()
    );
    Ok(())
}

//! An in-process `warden serve` on loopback for the API benchmarks, with a
//! tenant and key made, and a small JSON client.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::sync::Arc;

const ADMIN: &str = "bench-admin-token";

pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Http {
    pub async fn call(
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

    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> Result<String> {
        let resp = self
            .client
            .post(format!("{}/v1/files?name={name}", self.base))
            .bearer_auth(&self.token)
            .body(bytes)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await?;
        if !status.is_success() {
            bail!("upload {name}: {status}: {v}");
        }
        Ok(v["id"].as_str().context("no file id")?.to_string())
    }
}

pub struct BenchServer {
    pub http: Arc<Http>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<Result<()>>>,
    _data: tempfile::TempDir,
}

impl BenchServer {
    /// The server's data directory (a temporary one).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// Starts a server (configuration adjusted by `tune`) and makes a
    /// tenant with room for the benchmark.
    pub async fn start(
        tune: impl FnOnce(&mut warden_server::config::Config),
    ) -> Result<BenchServer> {
        let data = tempfile::tempdir()?;
        let mut cfg = warden_server::config::Config::load(None)?;
        cfg.listen = "127.0.0.1:0".parse()?;
        cfg.data_dir = data.path().to_path_buf();
        cfg.admin_token = Some(ADMIN.into());
        tune(&mut cfg);
        let init = crate::runtime::init_path()?;
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(warden_server::serve(
            cfg,
            init,
            move |a, _| {
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
                            "max_storage_bytes": 1u64 << 34, "max_file_bytes": 1u64 << 30});
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
        Ok(BenchServer {
            http: Arc::new(Http {
                client,
                base,
                token: k["key"].as_str().context("no key")?.to_string(),
            }),
            stop: Some(stop_tx),
            join: Some(join),
            _data: data,
        })
    }

    pub async fn stop(mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            j.await??;
        }
        Ok(())
    }
}

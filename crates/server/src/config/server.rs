//! `[server]`: what one server process lets its clients and tenants take
//! of its own resources (connections, memory, sandboxes on this node).

use anyhow::Result;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// A request's head (request line and headers) must arrive within this
    /// many seconds of its first byte; a connection that sends part of a
    /// head and stalls is closed.
    pub header_timeout_secs: u64,
    /// A kept-alive connection with no request in flight is closed after
    /// this many seconds (a long request or stream is never cut).
    pub idle_timeout_secs: u64,
    /// Open client connections; past it the server stops accepting until
    /// one closes (the timeouts above bound how long a stalled one stays).
    pub max_connections: usize,
    /// Sandboxes (interactive and review jobs') running on this node at
    /// once; past it a create answers 503 naming this capacity.
    pub max_sandboxes: usize,
    /// Output a JSON-mode exec keeps per stream (stdout, stderr); the rest
    /// is dropped and the answer says so (`stdout_truncated`, ...).
    pub exec_output_bytes: usize,
    /// What one tenant's JSON-mode execs in flight may buffer together
    /// (each kept byte is charged with its JSON form); past it output is
    /// cut and the answer names this limit. SSE and background execs
    /// buffer nothing and are not counted.
    pub exec_output_tenant_bytes: usize,
    /// What all tenants' requests may make this server buffer together:
    /// JSON-mode exec output and unpolled E2B watchers' events. The bound
    /// on the server's memory that tenants can drive.
    pub buffers_total_bytes: usize,
    /// Events an unpolled E2B watcher may hold, in bytes: per watcher,
    /// shared by a sandbox's watchers, shared by a tenant's watchers.
    pub watcher_bytes: usize,
    pub watcher_sandbox_bytes: usize,
    pub watcher_tenant_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 4096,
            max_sandboxes: warden_runtime::native::slots::MAX_SLOTS as usize,
            exec_output_bytes: 1 << 20,
            exec_output_tenant_bytes: 64 << 20,
            buffers_total_bytes: 512 << 20,
            watcher_bytes: 1 << 20,
            watcher_sandbox_bytes: 4 << 20,
            watcher_tenant_bytes: 16 << 20,
        }
    }
}

impl ServerConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// `WARDEN_HEADER_TIMEOUT_SECS`, `WARDEN_IDLE_TIMEOUT_SECS`,
    /// `WARDEN_MAX_CONNECTIONS`, `WARDEN_MAX_SANDBOXES`,
    /// `WARDEN_EXEC_OUTPUT_BYTES`, `WARDEN_EXEC_OUTPUT_TENANT_BYTES`,
    /// `WARDEN_BUFFERS_TOTAL_BYTES`, `WARDEN_WATCHER_BYTES`,
    /// `WARDEN_WATCHER_SANDBOX_BYTES`, `WARDEN_WATCHER_TENANT_BYTES`.
    pub(super) fn apply_env(&mut self, num: &impl Fn(&str) -> Result<Option<u64>>) -> Result<()> {
        if let Some(v) = num("WARDEN_HEADER_TIMEOUT_SECS")? {
            self.header_timeout_secs = v.max(1);
        }
        if let Some(v) = num("WARDEN_IDLE_TIMEOUT_SECS")? {
            self.idle_timeout_secs = v.max(1);
        }
        let size = |k: &str, min: u64| -> Result<Option<usize>> {
            Ok(num(k)?.map(|v| v.max(min).min(usize::MAX as u64) as usize))
        };
        if let Some(v) = size("WARDEN_MAX_CONNECTIONS", 1)? {
            self.max_connections = v;
        }
        if let Some(v) = size("WARDEN_MAX_SANDBOXES", 1)? {
            self.max_sandboxes = v;
        }
        if let Some(v) = size("WARDEN_EXEC_OUTPUT_BYTES", 0)? {
            self.exec_output_bytes = v;
        }
        if let Some(v) = size("WARDEN_EXEC_OUTPUT_TENANT_BYTES", 0)? {
            self.exec_output_tenant_bytes = v;
        }
        if let Some(v) = size("WARDEN_BUFFERS_TOTAL_BYTES", 0)? {
            self.buffers_total_bytes = v;
        }
        if let Some(v) = size("WARDEN_WATCHER_BYTES", 1024)? {
            self.watcher_bytes = v;
        }
        if let Some(v) = size("WARDEN_WATCHER_SANDBOX_BYTES", 1024)? {
            self.watcher_sandbox_bytes = v;
        }
        if let Some(v) = size("WARDEN_WATCHER_TENANT_BYTES", 1024)? {
            self.watcher_tenant_bytes = v;
        }
        Ok(())
    }
}

impl fmt::Display for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[server]")?;
        writeln!(f, "header_timeout_secs = {}", self.header_timeout_secs)?;
        writeln!(f, "idle_timeout_secs = {}", self.idle_timeout_secs)?;
        writeln!(f, "max_connections = {}", self.max_connections)?;
        writeln!(f, "max_sandboxes = {}", self.max_sandboxes)?;
        writeln!(f, "exec_output_bytes = {}", self.exec_output_bytes)?;
        writeln!(
            f,
            "exec_output_tenant_bytes = {}",
            self.exec_output_tenant_bytes
        )?;
        writeln!(f, "buffers_total_bytes = {}", self.buffers_total_bytes)?;
        writeln!(f, "watcher_bytes = {}", self.watcher_bytes)?;
        writeln!(f, "watcher_sandbox_bytes = {}", self.watcher_sandbox_bytes)?;
        writeln!(f, "watcher_tenant_bytes = {}", self.watcher_tenant_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut c: ServerConfig = toml::from_str("max_connections = 10\n").unwrap();
        assert_eq!(c.max_connections, 10);
        assert_eq!(c.header_timeout_secs, 10);
        c.apply_env(&|k: &str| Ok((k == "WARDEN_HEADER_TIMEOUT_SECS").then_some(0)))
            .unwrap();
        assert_eq!(c.header_timeout_secs, 1);
        assert!(toml::from_str::<ServerConfig>("max_conections = 1\n").is_err());
    }
}

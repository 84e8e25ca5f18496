//! `[server]`: what one server process lets its clients and tenants take
//! of its own resources (connections, memory, sandboxes on this node).

use super::knobs::knobs;
use std::time::Duration;

knobs! {
    #[derive(Debug)]
    pub struct ServerConfig {
        /// A request's head (request line and headers) must arrive within
        /// this many seconds (at least 1) of its first byte; a connection
        /// that sends part of a head and stalls is closed.
        pub header_timeout_secs: u64 = 10, env "WARDEN_HEADER_TIMEOUT_SECS";
        /// A kept-alive connection with no request in flight is closed after
        /// this many seconds (at least 1; a long request or stream is never
        /// cut).
        pub idle_timeout_secs: u64 = 60, env "WARDEN_IDLE_TIMEOUT_SECS";
        /// Open client connections (at least 1); past it the server stops
        /// accepting until one closes (the timeouts above bound how long a
        /// stalled one stays).
        pub max_connections: usize = 4096, env "WARDEN_MAX_CONNECTIONS";
        /// Sandboxes (interactive and review jobs') running on this node at
        /// once (at least 1); past it a create answers 503 naming this
        /// capacity.
        pub max_sandboxes: usize = warden_runtime::native::slots::MAX_SLOTS as usize,
            env "WARDEN_MAX_SANDBOXES";
        /// Output a JSON-mode exec keeps per stream (stdout, stderr); the
        /// rest is dropped and the answer says so (`stdout_truncated`, ...).
        pub exec_output_bytes: usize = 1 << 20, env "WARDEN_EXEC_OUTPUT_BYTES";
        /// What one tenant's JSON-mode execs in flight may buffer together
        /// (each kept byte is charged with its JSON form); past it output is
        /// cut and the answer names this limit. SSE and background execs
        /// buffer nothing and are not counted.
        pub exec_output_tenant_bytes: usize = 64 << 20, env "WARDEN_EXEC_OUTPUT_TENANT_BYTES";
        /// What all tenants' requests may make this server buffer together:
        /// JSON-mode exec output, unpolled E2B watchers' events, open
        /// connections to sandbox ports and what resumed sandboxes'
        /// restored files are remembered by. The bound on the server's memory
        /// that tenants can drive.
        pub buffers_total_bytes: usize = 512 << 20, env "WARDEN_BUFFERS_TOTAL_BYTES";
        /// What one tenant's resumed sandboxes may make this server hold
        /// (of `buffers_total_bytes` too) to remember their restored files,
        /// so that their next pause takes untouched files without reading
        /// them (about 128 bytes and the path per file). Past either, a
        /// resumed sandbox remembers nothing and its next pause reads every
        /// file.
        pub base_tenant_bytes: usize = 64 << 20, env "WARDEN_BASE_TENANT_BYTES";
        /// Events an unpolled E2B watcher may hold, in bytes (each at least
        /// 1024): per watcher, shared by a sandbox's watchers, shared by a
        /// tenant's watchers.
        pub watcher_bytes: usize = 1 << 20, env "WARDEN_WATCHER_BYTES";
        pub watcher_sandbox_bytes: usize = 4 << 20, env "WARDEN_WATCHER_SANDBOX_BYTES";
        pub watcher_tenant_bytes: usize = 16 << 20, env "WARDEN_WATCHER_TENANT_BYTES";
        /// Connections to ports inside sandboxes (E2B `get_host`, `/v1`
        /// `/ports/{port}`) one tenant may have open at once; each also
        /// holds 512 KiB of `buffers_total_bytes`.
        pub port_connections_tenant: usize = 64, env "WARDEN_PORT_CONNECTIONS_TENANT";
    }
}

impl ServerConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs.max(1))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// The floors above, whatever a source said.
    pub(super) fn normalize(&mut self) {
        self.header_timeout_secs = self.header_timeout_secs.max(1);
        self.idle_timeout_secs = self.idle_timeout_secs.max(1);
        self.max_connections = self.max_connections.max(1);
        self.max_sandboxes = self.max_sandboxes.max(1);
        for b in [
            &mut self.watcher_bytes,
            &mut self.watcher_sandbox_bytes,
            &mut self.watcher_tenant_bytes,
        ] {
            *b = (*b).max(1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn file_then_environment() {
        let mut c: Config = toml::from_str("[server]\nmax_connections = 10\n").unwrap();
        assert_eq!(c.server.max_connections, 10);
        assert_eq!(c.server.header_timeout_secs, 10);
        c.apply_env(|k: &str| (k == "WARDEN_HEADER_TIMEOUT_SECS").then(|| "0".into()))
            .unwrap();
        assert_eq!(c.server.header_timeout_secs, 1);
        assert!(toml::from_str::<Config>("[server]\nmax_conections = 1\n").is_err());
    }
}

//! Connections to ports inside a sandbox (E2B's `get_host(port)`, `/v1`'s
//! `/ports/{port}`): a tunnel through the sandbox's init to its loopback,
//! so a sandbox with no network at all still serves its ports, on either
//! tier, and nothing of the host's network is opened to it.
//!
//! Each open connection holds buffers of the server's ([`CONNECTION_BYTES`]):
//! it is charged to its tenant's count (`[server]
//! port_connections_tenant`) and to the server's total for tenants'
//! buffers (`buffers_total_bytes`), and given back when it closes.

use super::{Error, Result};
use crate::budget::Held;
use crate::manager::Live;
use crate::state::AppState;
use std::sync::Arc;
use tokio::io::DuplexStream;
use warden_protocol::{ClientError, ErrorKind};

/// What one open connection may hold of the server's memory: its tunnel's
/// buffer both ways, plus the HTTP client's read and write buffers.
pub const CONNECTION_BYTES: usize = 512 << 10;

/// An open connection to a port in a sandbox, with its charges.
pub struct PortConnection {
    pub stream: DuplexStream,
    pub port: u16,
    /// Given back when dropped: keep it for as long as the stream is used.
    pub charges: Charges,
}

/// A connection's charges against its tenant's count and the server's
/// total.
pub struct Charges {
    _tenant: Held,
    _total: Held,
}

/// The one thing a caller can get wrong: port 0. Every other port may be
/// served; whether something listens there is the sandbox's business.
pub fn check_port(port: u16) -> Result<u16> {
    if port == 0 {
        return Err(Error::invalid("port must be 1 to 65535"));
    }
    Ok(port)
}

/// Opens a connection to `port` on `live`'s loopback. Nothing listening
/// there is `Sandbox(Remote(Refused))` ("port is not open").
pub async fn open(st: &AppState, live: &Arc<Live>, port: u16) -> Result<PortConnection> {
    let port = check_port(port)?;
    let limit = st.cfg.server.port_connections_tenant;
    let tenant_share = st
        .buffers
        .ports
        .get(&live.tenant, limit.saturating_mul(CONNECTION_BYTES));
    let tenant = tenant_share.hold(CONNECTION_BYTES).ok_or_else(|| {
        Error::Quota(format!(
            "too many open connections to sandbox ports: at most {limit} per tenant \
             (port_connections_tenant)"
        ))
    })?;
    let total = st.buffers.total.hold(CONNECTION_BYTES).ok_or_else(|| {
        Error::Capacity(
            "the server has no room for another connection to a sandbox port \
             (buffers_total_bytes); try again shortly"
                .into(),
        )
    })?;
    let stream = live.client.connect_port(port).await?;
    Ok(PortConnection {
        stream,
        port,
        charges: Charges {
            _tenant: tenant,
            _total: total,
        },
    })
}

/// Whether `e` says nothing listens on the port.
pub fn is_not_open(e: &Error) -> bool {
    matches!(e, Error::Sandbox(c) if c.remote_kind() == Some(ErrorKind::Refused))
}

/// Whether the sandbox itself is gone (ended while connecting).
pub fn is_gone(e: &Error) -> bool {
    matches!(e, Error::Sandbox(ClientError::Disconnected))
}

//! Where the proxy reports each attempt (the event type itself is plain
//! data in `warden-spec`, so the store can keep it without this crate).

pub use warden_spec::{EgressEvent, Outcome};

/// Where events go (the server's egress log, `warden run`'s stderr).
pub trait EgressSink: Send + Sync + 'static {
    fn record(&self, event: EgressEvent);
}

impl<F: Fn(EgressEvent) + Send + Sync + 'static> EgressSink for F {
    fn record(&self, event: EgressEvent) {
        self(event)
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

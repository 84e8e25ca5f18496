//! The node's room for sandboxes: a configured cap, and what a start that
//! failed for want of room (slots, file descriptors) tells the caller — a
//! 503 naming the capacity, not an opaque 500.

use super::Manager;
use crate::service::{Error, Result};
use warden_runtime::native::slots::{SlotError, MAX_SLOTS};

/// Releases a place held against the node's capacity.
pub(super) struct Starting<'a>(&'a Manager);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        let mut n = self.0.starting.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
    }
}

/// The node is out of room for another sandbox: 503, naming the capacity.
fn capacity(m: impl Into<String>) -> Error {
    Error::Capacity(m.into())
}

impl Manager {
    /// At most `n` sandboxes at once on this node.
    pub fn with_capacity(mut self, n: usize) -> Manager {
        self.capacity = n.max(1);
        self
    }

    /// Holds a place for one more sandbox, or refuses with 503 when the
    /// node runs as many as it may.
    pub(super) fn reserve(&self) -> Result<Starting<'_>> {
        let mut starting = self.starting.lock().unwrap_or_else(|e| e.into_inner());
        let live = self.map().len();
        if live + *starting >= self.capacity {
            return Err(capacity(format!(
                "this server is at capacity: {} sandboxes are running or starting, \
                 its limit is {} ([server] max_sandboxes); try again later",
                live + *starting,
                self.capacity
            )));
        }
        *starting += 1;
        Ok(Starting(self))
    }
}

/// What a failed start means to the caller: their spec (400), a tier this
/// server does not offer (400 `isolation_unavailable`), or Warden's fault.
pub(super) fn start_error(e: warden_runtime::RuntimeError) -> Error {
    use warden_runtime::RuntimeError as E;
    match e {
        E::Spec(e) => Error::invalid(e.to_string()),
        E::Unsupported(m) => Error::invalid(m),
        e @ E::TierUnavailable { .. } => Error::IsolationUnavailable(e.to_string()),
        E::Slot(SlotError::Exhausted) => capacity(format!(
            "this server is at capacity: all {} sandbox slots are in use; try again later",
            MAX_SLOTS
        )),
        e if out_of_descriptors(&e) => {
            tracing::warn!("starting a sandbox: out of file descriptors: {e}");
            capacity(
                "this server is at capacity: it has no file descriptors left for another \
                 sandbox (its open-files limit); try again later",
            )
        }
        e => Error::internal("starting a sandbox", e),
    }
}

/// A sandbox that started but could not be connected to.
pub(super) fn connect_error(e: anyhow::Error) -> Error {
    if out_of_descriptors(e.as_ref()) {
        tracing::warn!("connecting to a sandbox: out of file descriptors: {e:#}");
        return capacity(
            "this server is at capacity: it has no file descriptors left for another \
             sandbox (its open-files limit); try again later",
        );
    }
    Error::internal("starting a sandbox", format!("{e:#}"))
}

/// Whether an error comes from the process (EMFILE) or the system (ENFILE)
/// running out of file descriptors, anywhere in its chain of causes.
pub(super) fn out_of_descriptors(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

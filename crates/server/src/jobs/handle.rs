//! What the API and the review worker share on one node: the worker's
//! wake-up, and how to tell a job running here that it was cancelled.
//! (Apart from the worker, so that the server's shared state can hold it
//! without depending on the worker.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use warden_store::ReviewId;

/// What the API and the worker share on one node.
#[derive(Default)]
pub struct JobsHandle {
    /// Wakes the worker (a job was submitted, or a slot freed).
    pub wake: Notify,
    /// Jobs running on this node, and how to tell each to stop.
    cancels: Mutex<HashMap<ReviewId, Arc<Notify>>>,
    running: AtomicUsize,
}

impl JobsHandle {
    /// Tells a job running on this node that it was cancelled (a job on
    /// another node sees the flag when it next renews its lease).
    pub fn cancel(&self, id: &ReviewId) {
        if let Some(n) = self
            .cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            n.notify_one();
        }
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub(super) fn register(&self, id: &ReviewId) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        self.cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), n.clone());
        n
    }

    pub(super) fn unregister(&self, id: &ReviewId) {
        self.cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub(super) fn started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn ended(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }
}

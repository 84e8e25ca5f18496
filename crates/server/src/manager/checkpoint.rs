//! Sandboxes that keep their processes and memory across a pause
//! (`service::pause_memory`): what a restored one carries over, and the
//! checkpoint of a live one.

use super::{Live, Manager};
use crate::service::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// What a sandbox restored from a checkpoint carries over.
pub struct FromCheckpoint {
    /// The checkpoint's directory (only read).
    pub image: PathBuf,
    /// Its [`Live::changes_since_ns`]: its files keep their times.
    pub changes_since_ns: i64,
    /// Its code interpreter runs (it was started before the pause).
    pub interpreter: bool,
}

/// How long a restored sandbox's init may take to answer its `Thaw`.
pub(super) const THAW_DEADLINE: Duration = Duration::from_secs(60);

impl Manager {
    /// Saves `live` whole into the empty directory `image` (its init
    /// frozen first by the caller), ending its processes; it still has to
    /// be destroyed. On failure it goes on running.
    pub async fn checkpoint(&self, live: &Live, image: PathBuf) -> Result<()> {
        let taken = live
            .sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut sandbox = taken.ok_or_else(|| Error::conflict("the sandbox has just ended"))?;
        let (sandbox, saved) = tokio::task::spawn_blocking(move || {
            let saved = sandbox.checkpoint(&image);
            (sandbox, saved)
        })
        .await
        .map_err(|e| Error::internal("checkpointing a sandbox", e))?;
        *live.sandbox.lock().unwrap_or_else(|e| e.into_inner()) = Some(sandbox);
        saved.map_err(|e| Error::internal("checkpointing the sandbox (it goes on running)", e))
    }
}

//! What the runtime's pools of things made ahead of time share (network
//! namespaces in `netns.rs`, pre-started sandboxes in `prestart.rs`): their state
//! behind a mutex, a condition variable the filler thread sleeps on, and a
//! filler thread that is told to stop, and joined, when the pool goes.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a pool of sandboxes made ahead tells its filler about itself.
pub trait PoolState {
    fn closed(&self) -> bool;
    /// How many are ready to hand out.
    fn ready(&self) -> usize;
    /// When one was last handed out.
    fn taken(&self) -> Option<Instant>;
}

/// What the filler does next (see [`Shared::after_settling`]).
pub enum Next {
    Stop,
    Full,
    Make,
}

pub struct Shared<S> {
    state: Mutex<S>,
    wake: Condvar,
}

impl<S> Shared<S> {
    /// The pool's state; a panic elsewhere never makes it unusable.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until `until` holds (checked first, and after each wake-up).
    pub fn wait_until<'a>(
        &self,
        st: MutexGuard<'a, S>,
        until: impl Fn(&S) -> bool,
    ) -> MutexGuard<'a, S> {
        self.wake
            .wait_while(st, |s| !until(s))
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `timeout`, or until `until` holds; returns the guard.
    pub fn wait_for<'a>(
        &self,
        st: MutexGuard<'a, S>,
        timeout: std::time::Duration,
        until: impl Fn(&S) -> bool,
    ) -> MutexGuard<'a, S> {
        match self.wake.wait_timeout_while(st, timeout, |s| !until(s)) {
            Ok((st, _)) => st,
            Err(e) => e.into_inner().0,
        }
    }

    /// Wakes the filler (something was taken, or the pool is closing).
    pub fn wake(&self) {
        self.wake.notify_all();
    }
}

impl<S: PoolState> Shared<S> {
    /// The sandbox last handed out is setting itself up: leaves it the CPUs
    /// until `settle` after its hand-out (a start's own latency comes
    /// first), unless the pool has run dry; then says whether to make one
    /// more for a pool of `size`.
    pub fn after_settling(&self, settle: Duration, size: usize) -> Next {
        let st = self.lock();
        let left = match st.taken() {
            Some(t) if st.ready() > 0 => settle.saturating_sub(t.elapsed()),
            _ => Duration::ZERO,
        };
        let st = self.wait_for(st, left, |st| st.closed() || st.ready() == 0);
        if st.closed() {
            Next::Stop
        } else if st.ready() >= size {
            Next::Full
        } else {
            Next::Make
        }
    }
}

/// A pool's state and its filler thread.
pub struct Filler<S> {
    pub shared: Arc<Shared<S>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: Send + 'static> Filler<S> {
    /// Starts `fill` on a thread called `name` (none when `run` is false,
    /// or if the thread cannot start: the pool then stays empty).
    pub fn start(
        name: &str,
        state: S,
        run: bool,
        fill: impl FnOnce(&Shared<S>) + Send + 'static,
    ) -> Filler<S> {
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
        });
        let thread = run
            .then(|| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || fill(&s))
                    .map_err(|e| tracing::warn!("no {name} pool: {e}"))
                    .ok()
            })
            .flatten();
        Filler { shared, thread }
    }

    /// Tells the filler to stop (`close` marks the state closed) and waits
    /// for it; what the pool still holds is then the caller's to release.
    pub fn stop(&mut self, close: impl FnOnce(&mut S)) {
        close(&mut self.shared.lock());
        self.shared.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

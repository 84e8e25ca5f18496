//! The scheduler: every node ticks once a second and submits the due
//! slots of every tenant's schedules (`service::schedules::fire_due`,
//! which keeps each slot to one review however many nodes tick).

use crate::state::Shared;
use std::time::Duration;

/// How often due schedules are looked for: the finest a slot can be late.
const TICK: Duration = Duration::from_secs(1);

pub async fn scheduler_loop(st: Shared) {
    let mut backoff = crate::service::schedules::Backoff::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if st.draining() {
            return;
        }
        if let Err(e) = crate::service::schedules::fire_due(&st, &mut backoff).await {
            tracing::warn!("the scheduler's tick: {e}");
        }
    }
}

//! The init's sleeps, each on a timerfd of its own rather than tokio's
//! timer wheel.
//!
//! Why: with tokio's time driver enabled, the runtime reads the clock at
//! every wake-up (~20 reads for one command's start and output), and under
//! gVisor on hosts without a usable vDSO clock (this Firecracker guest) each
//! read is a trap into the Sentry, ~75 us. The init sleeps rarely (a
//! command's timeout; the 1 ms tick between `Freeze` and `Thaw`), so a timer
//! that costs nothing until it is used is the better trade. Without the
//! driver, `tokio::time` panics, so nothing in the init may use it.

use std::io;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// Waits `d` (at least 1 ns: a zero timerfd would never fire). If no timer
/// can be made (out of descriptors), waits on a blocking thread instead:
/// a sleep that guards a timeout must not end early or never.
pub async fn sleep(d: Duration) {
    let d = d.max(Duration::from_nanos(1));
    if timerfd_sleep(d).await.is_err() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
    }
}

async fn timerfd_sleep(d: Duration) -> io::Result<()> {
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
    )?;
    let value = Timespec {
        tv_sec: d.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: d.subsec_nanos().into(),
    };
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let spec = Itimerspec {
        it_interval: zero,
        it_value: value,
    };
    timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
    // SAFETY: an OwnedFd always returns the descriptor it owns, which stays
    // open until the AsyncFd (its owner from here) drops it.
    let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
    loop {
        let mut ready = fd.readable().await?;
        // The expiry count; EAGAIN means a spurious wake-up.
        match rustix::io::read(fd.get_ref(), &mut [0u8; 8]) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn io_only() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap()
    }

    #[test]
    fn sleeps_at_least_as_asked_without_tokio_timers() {
        io_only().block_on(async {
            let t = Instant::now();
            sleep(Duration::from_millis(30)).await;
            assert!(
                t.elapsed() >= Duration::from_millis(30),
                "{:?}",
                t.elapsed()
            );
            // Zero still ends.
            sleep(Duration::ZERO).await;
        });
    }

    #[test]
    fn sleeps_run_side_by_side() {
        io_only().block_on(async {
            let t = Instant::now();
            let (a, b) = (
                sleep(Duration::from_millis(50)),
                sleep(Duration::from_millis(50)),
            );
            tokio::join!(a, b);
            let took = t.elapsed();
            assert!(took >= Duration::from_millis(50), "{took:?}");
            // Concurrent, not one after the other (generous bound: busy CI).
            assert!(took < Duration::from_millis(95), "{took:?}");
        });
    }
}

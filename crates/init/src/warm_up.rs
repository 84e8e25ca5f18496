//! Warming up a pre-started gVisor sandbox before it is handed out
//! (`codec::WARM_UP`, sent by the runtime's pool).
//!
//! Under gVisor the first command in a new sandbox is slower than the next
//! ones (~25 ms against ~17 ms for `echo` over the API on this host): the
//! Sentry has yet to look up and cache the dynamic loader, libc, the loader's
//! cache and the locale archive, and the ptrace platform has yet to make the
//! stub process a new address space runs in. Run a few of the image's
//! programs while the sandbox waits in the pool, and the tenant's first
//! command finds all of that ready. Likewise the first file work (a file
//! written, a snapshot restored: ~10 ms of a create from a small snapshot
//! here) started the runtime's blocking thread, gave it its malloc arena
//! and looked up the sandbox's places cold; a blocking task that looks at
//! them leaves the thread waiting (see `BLOCKING_KEEP_ALIVE`) and the
//! Sentry's lookups cached.
//!
//! What runs is the image's own programs with a fixed, empty environment
//! (only `LANG`), before the sandbox has any configuration, secrets or
//! files of its own; afterwards every process is killed and reaped, so
//! nothing they started outlives the warm-up. A program the image lacks is
//! skipped.

use crate::spawn::{Spawn, Stdio};

/// What a sandbox's first commands typically load: a shell, and a dynamic
/// coreutils program that reads the locale (as `LANG=C.UTF-8` makes every
/// command do).
const PROGRAMS: &[&[&str]] = &[&["/bin/sh", "-c", ":"], &["/bin/echo"]];

/// The places a restore or a file request usually looks at first.
const PLACES: &[&str] = &["/home", "/scratch", "/tmp", "/output"];

pub fn run(rt: &tokio::runtime::Runtime) {
    for argv in PROGRAMS {
        let mut s = Spawn::new(argv[0]);
        s.args(&argv[1..]).env("LANG", "C.UTF-8");
        if let Ok(child) = s.start("/", Stdio::Pipes { stdin: false }, None) {
            // The init's ends close before the wait: output goes nowhere and
            // can never fill a pipe nobody reads (at worst the program ends
            // on SIGPIPE, after it has loaded).
            drop(child.stdout);
            drop(child.stderr);
            let mut status = 0;
            // SAFETY: our own child; blocks until it has ended.
            unsafe { libc::waitpid(child.pid as i32, &mut status, 0) };
        }
    }
    // Its result says nothing worth knowing: a place may be missing.
    let _ = rt.block_on(rt.spawn_blocking(look_at_places));
    // Anything the programs left behind. As PID 1, kill(-1) spares only the
    // init; elsewhere (tests) it would reach far more, so only then.
    if std::process::id() == 1 {
        // SAFETY: signals and waits, no memory involved.
        unsafe {
            libc::kill(-1, libc::SIGKILL);
            while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0 {}
        }
    }
}

/// What a restore's first batch does to each place: look at it and at
/// what it holds.
fn look_at_places() {
    for place in PLACES {
        let _ = std::fs::symlink_metadata(place);
        if let Ok(entries) = std::fs::read_dir(place) {
            for e in entries.flatten() {
                let _ = std::fs::symlink_metadata(e.path());
            }
        }
    }
}

//! Ad-hoc timings (printed; run with `--nocapture`). Only a loose sanity bound is asserted.

mod common;

use std::time::Instant;

use common::run_in_child;
use warden_confine::{
    apply_landlock, apply_seccomp, load_seccomp_filter, CompiledFilter, LandlockPaths,
};

fn micros(f: impl FnMut(), n: u32) -> (f64, f64) {
    let mut f = f;
    let mut min = f64::MAX;
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f();
        min = min.min(t.elapsed().as_secs_f64() * 1e6);
    }
    (start.elapsed().as_secs_f64() * 1e6 / f64::from(n), min)
}

#[test]
fn timings() {
    let (mean, min) = micros(|| drop(load_seccomp_filter().unwrap()), 200);
    let filter = load_seccomp_filter().unwrap();
    let bytes = filter.to_bytes();
    let (dmean, dmin) = micros(|| drop(CompiledFilter::from_bytes(&bytes).unwrap()), 2000);
    eprintln!(
        "compile: mean {mean:.1} us, min {min:.1} us; from_bytes ({} bytes, {} insns): mean {dmean:.2} us, min {dmin:.2} us",
        bytes.len(),
        filter.instruction_count()
    );
    assert!(min < 50_000.0, "compile unexpectedly slow");
    let msg = run_in_child(move || {
        let before = syscall_ns();
        let t = Instant::now();
        apply_seccomp(&filter).map_err(|e| format!("{e:?}"))?;
        let seccomp = t.elapsed().as_secs_f64() * 1e6;
        let t = Instant::now();
        let paths = LandlockPaths {
            read_exec: vec!["/usr".into(), "/etc".into()],
            read_write: vec!["/tmp".into()],
        };
        apply_landlock(&paths).map_err(|e| format!("{e:?}"))?;
        let landlock = t.elapsed().as_secs_f64() * 1e6;
        let after = syscall_ns();
        Ok(format!(
            "apply_seccomp: {seccomp:.1} us; apply_landlock (3 paths): {landlock:.1} us\n\
             ns/syscall (getppid, ioctl FIONREAD) before {before:.0?}, after {after:.0?}"
        ))
    })
    .expect_ok();
    eprintln!("{msg}");
}

/// Mean nanoseconds of getppid (no argument rules: seccomp's cache skips the
/// filter) and ioctl(FIONREAD) (has argument rules: the filter runs).
fn syscall_ns() -> (f64, f64) {
    let mut p = [0; 2];
    // SAFETY: pipe into a valid array.
    unsafe { libc::pipe(p.as_mut_ptr()) };
    let mut n: libc::c_int = 0;
    let n_calls = 200_000;
    let t = Instant::now();
    for _ in 0..n_calls {
        // SAFETY: no arguments.
        unsafe { libc::getppid() };
    }
    let getppid = t.elapsed().as_secs_f64() * 1e9 / f64::from(n_calls);
    let t = Instant::now();
    for _ in 0..n_calls {
        // SAFETY: FIONREAD into a valid int.
        unsafe { libc::ioctl(p[0], libc::FIONREAD, &mut n) };
    }
    let ioctl = t.elapsed().as_secs_f64() * 1e9 / f64::from(n_calls);
    (getppid, ioctl)
}

//! `warden bench run`: sandbox create -> `/bin/true` -> destroy, timed in
//! this process, next to the baselines it must beat, run in the same process:
//! `unshare` of the same namespaces (the floor) and `bwrap` with the same
//! binds, taking turns cycle by cycle. Warden runs twice: as configured by
//! default (sandboxes pre-started in the background) and with nothing
//! pre-started (every step on the start path). Prints p50/p99 and the
//! ratios; never asserts anything.

use crate::bench_measure::{bar, cycle, ms, percentile, row, run_command, Phases, BWRAP};
use anyhow::{bail, Result};
use warden_spec::SandboxSpec;

const UNSHARE: &[&str] = &[
    "unshare",
    "-U",
    "-r",
    "-p",
    "-f",
    "-m",
    "-i",
    "-u",
    "-n",
    "--cgroup",
    "/bin/true",
];

pub fn run(n: usize, warmup: usize) -> Result<()> {
    if n == 0 {
        bail!("--iterations must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The runtime as `warden serve` and the benches run it (sandboxes
    // pre-started in the background), and one that takes every step on
    // the start path, for comparison.
    let native = crate::runtime::native()?;
    let cold = crate::runtime::native_with_pool(0)?;
    let spec = SandboxSpec::default();
    // The contenders take turns cycle by cycle, so a busy neighbour (or any
    // drift of the machine) weighs on all of them alike and the ratios hold.
    let (mut warden, mut warden_cold, mut unshare, mut bwrap) = (vec![], vec![], vec![], vec![]);
    let (mut phases, mut cold_phases) = (Phases::new(), Phases::new());
    let pb = bar("cycles", n + warmup);
    for i in 0..n + warmup {
        let counted = i >= warmup;
        let w = rt.block_on(cycle(&native, &spec, counted.then_some(&mut phases)))?;
        let c = rt.block_on(cycle(&cold, &spec, counted.then_some(&mut cold_phases)))?;
        let u = run_command("unshare", UNSHARE)?;
        let b = run_command("bwrap", BWRAP)?;
        if counted {
            warden.push(w);
            warden_cold.push(c);
            unshare.push(u);
            bwrap.push(b);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!(
        "sandbox create -> /bin/true -> destroy, {n} cycles each (after {warmup} warm-up), \
         contenders taking turns"
    );
    row("warden (native, full confinement)", &warden);
    row("  start (take a pre-started init)", &phases.start);
    row("  ready (init set-up, handshake)", &phases.ready);
    row("  exec /bin/true", &phases.exec);
    row("  destroy", &phases.destroy);
    row("exec /bin/true in a live sandbox", &phases.exec_again);
    row("warden, nothing pre-started", &warden_cold);
    row("  start (clone, maps, cgroup)", &cold_phases.start);
    row("  ready (init set-up, handshake)", &cold_phases.ready);
    row("unshare -U -r -p -f -m -i -u -n", &unshare);
    row("bwrap --unshare-all (same binds)", &bwrap);
    let w = ms(percentile(&warden, 0.5));
    let c = ms(percentile(&warden_cold, 0.5));
    let u = ms(percentile(&unshare, 0.5));
    let b = ms(percentile(&bwrap, 0.5));
    println!("ratio warden/unshare p50: {:.2}x (target <= 1.5x)", w / u);
    println!("ratio bwrap/warden p50:   {:.2}x (target >= 1.5x)", b / w);
    println!(
        "nothing pre-started: warden/unshare {:.2}x, bwrap/warden {:.2}x",
        c / u,
        b / c
    );
    Ok(())
}

//! `warden bench gvisor`: the gVisor tier's create -> `/bin/true` -> destroy
//! next to raw `runsc do /bin/true` on the same platform in the same run,
//! and the exec round trip in a live sandbox on both tiers.

use crate::bench_measure::{ms, percentile, row, time_command, time_cycles};
use anyhow::{bail, Result};
use warden_spec::{Isolation, SandboxSpec};

pub fn run(n: usize, warmup: usize) -> Result<()> {
    if n == 0 {
        bail!("--iterations must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let gv = crate::runtime::gvisor()?;
    let platform = gv.platform().to_string();
    let spec = SandboxSpec {
        isolation: Isolation::Gvisor,
        ..SandboxSpec::default()
    };
    let (warden, phases) = rt.block_on(time_cycles(&gv, &spec, "gvisor", n, warmup))?;
    // Raw runsc with its own scratch state directory, removed afterwards.
    let scratch = tempfile::tempdir()?;
    let root = scratch.path().to_string_lossy().into_owned();
    let binary = gv.runsc().binary.to_string_lossy().into_owned();
    let platform_flag = format!("--platform={platform}");
    let raw = time_command(
        "runsc do",
        &[
            &binary,
            "--root",
            &root,
            &platform_flag,
            "--network=none",
            "do",
            "/bin/true",
        ],
        n,
        warmup,
    )?;
    drop(gv);
    let (_, native) = rt.block_on(crate::bench_measure::time_warden(n, warmup))?;
    println!(
        "gVisor tier (platform {platform}): create -> /bin/true -> destroy, \
         {n} cycles each (after {warmup} warm-up)"
    );
    row("warden (gvisor)", &warden);
    row("  start (bundle, runsc run, init up)", &phases.start);
    row("  handshake", &phases.ready);
    row("  exec /bin/true", &phases.exec);
    row("  destroy", &phases.destroy);
    row("runsc do /bin/true (raw)", &raw);
    row("exec /bin/true, live gvisor sandbox", &phases.exec_again);
    row("exec /bin/true, live native sandbox", &native.exec_again);
    let w = ms(percentile(&warden, 0.5));
    let r = ms(percentile(&raw, 0.5));
    println!(
        "ratio warden-gvisor/runsc-do p50: {:.2}x (target <= 1.2x)",
        w / r
    );
    let eg = ms(percentile(&phases.exec_again, 0.5));
    let en = ms(percentile(&native.exec_again, 0.5));
    println!("ratio exec round trip gvisor/native p50: {:.2}x", eg / en);
    let api_n = n.min(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::bench_gvisor_api::run(api_n, warmup))
}

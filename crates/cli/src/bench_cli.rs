//! `warden bench cli`: whole processes, as a user starts them from a shell.
//! `warden run -- /bin/true` next to `bwrap` with the same binds, and (when
//! runsc is installed) `warden run --isolation gvisor -- /bin/true` next to
//! `runsc do /bin/true` on the same platform, and (when the python-data
//! image is built) `python3 -c pass` in that image next to the host image.
//! Each pair takes turns run by run, so a busy neighbour weighs on both
//! alike. Prints p50/p99 and the ratios; never asserts anything.

use crate::bench_measure::{bar, ms, percentile, row, run_command, BWRAP};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// The gVisor pair, when runsc is there: runsc's path and the platform
/// Warden picked (the raw baseline runs on the same one).
struct Gvisor {
    runsc: String,
    platform: String,
    /// `runsc do`'s own state directory, removed afterwards.
    scratch: tempfile::TempDir,
}

fn gvisor() -> Option<Gvisor> {
    // Opening the runtime also builds the shared skeleton, so the timed
    // runs find it as any later `warden run` would.
    let gv = crate::runtime::gvisor().ok()?;
    Some(Gvisor {
        runsc: gv.runsc().binary.to_string_lossy().into_owned(),
        platform: gv.platform().to_string(),
        scratch: tempfile::tempdir().ok()?,
    })
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// What to run, and how often.
pub struct Plan {
    pub n: usize,
    pub gvisor_n: usize,
    pub warmup: usize,
    pub image_n: usize,
    pub image: Option<PathBuf>,
}

/// The image of the image pair: as given, else the python-data image where
/// `make image` puts it, if it is there.
fn image_dir(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given;
    }
    let base = std::env::var_os("WARDEN_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/warden/images"));
    Some(base.join("python-data")).filter(|p| p.join("usr/bin/python3").exists())
}

/// `python3 -c pass` in a directory image next to the host image.
fn image_pair(exe: &str, image: &std::path::Path, n: usize, warmup: usize) -> Result<()> {
    let img = image.to_string_lossy().into_owned();
    let in_image: Vec<&str> = vec![exe, "run", "--image", &img, "--", "python3", "-c", "pass"];
    let on_host: Vec<&str> = vec![exe, "run", "--", "python3", "-c", "pass"];
    let (mut a, mut b) = (vec![], vec![]);
    let pb = bar("image runs", n + warmup);
    for i in 0..n + warmup {
        let da = run_command("warden run --image", &in_image)?;
        let db = run_command("warden run (host image)", &on_host)?;
        if i >= warmup {
            a.push(da);
            b.push(db);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    row(&format!("python3 -c pass in {}", image.display()), &a);
    row("python3 -c pass in the host image", &b);
    let (ra, rb) = (ms(percentile(&a, 0.5)), ms(percentile(&b, 0.5)));
    println!("ratio image/host p50: {:.2}x (target <= 1.2x)", ra / rb);
    Ok(())
}

pub fn run(plan: Plan) -> Result<()> {
    let Plan {
        n,
        gvisor_n,
        warmup,
        image_n,
        image,
    } = plan;
    if n == 0 {
        bail!("--iterations must be at least 1");
    }
    let exe = std::env::current_exe().context("cannot locate the warden binary")?;
    let exe = exe.to_string_lossy().into_owned();
    let native: Vec<&str> = vec![&exe, "run", "--", "/bin/true"];
    let gv = if gvisor_n > 0 { gvisor() } else { None };
    let gv_argv = gv.as_ref().map(|g| {
        let warden = vec![
            exe.clone(),
            "run".into(),
            "--isolation".into(),
            "gvisor".into(),
            "--".into(),
            "/bin/true".into(),
        ];
        let raw = vec![
            g.runsc.clone(),
            "--root".into(),
            g.scratch.path().to_string_lossy().into_owned(),
            format!("--platform={}", g.platform),
            "--network=none".into(),
            "do".into(),
            "/bin/true".into(),
        ];
        (warden, raw)
    });
    let (mut warden, mut bwrap, mut warden_gv, mut runsc) = (vec![], vec![], vec![], vec![]);
    let timed = |v: &mut Vec<Duration>, d: Duration, counted: bool| {
        if counted {
            v.push(d);
        }
    };
    let pb = bar("runs", n + warmup);
    for i in 0..n + warmup {
        let counted = i >= warmup;
        timed(&mut warden, run_command("warden run", &native)?, counted);
        timed(&mut bwrap, run_command("bwrap", BWRAP)?, counted);
        if let Some((w, r)) = &gv_argv {
            if i < gvisor_n + warmup {
                let d = run_command("warden run --isolation gvisor", &strs(w))?;
                timed(&mut warden_gv, d, counted);
                timed(&mut runsc, run_command("runsc do", &strs(r))?, counted);
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!(
        "whole processes: `warden run -- /bin/true` and its baselines, {n} runs each \
         (gVisor pair {}), after {warmup} warm-up, taking turns",
        warden_gv.len()
    );
    row("warden run -- /bin/true", &warden);
    row("bwrap --unshare-all (same binds)", &bwrap);
    let w = ms(percentile(&warden, 0.5));
    let b = ms(percentile(&bwrap, 0.5));
    println!("ratio warden-run/bwrap p50: {:.2}x (target <= 1.0x)", w / b);
    if let Some(g) = &gv {
        row("warden run --isolation gvisor", &warden_gv);
        row(&format!("runsc do /bin/true ({})", g.platform), &runsc);
        let w = ms(percentile(&warden_gv, 0.5));
        let r = ms(percentile(&runsc, 0.5));
        println!(
            "ratio warden-run-gvisor/runsc-do p50: {:.2}x (target <= 1.1x)",
            w / r
        );
    } else {
        println!("gVisor pair skipped (runsc not available, or --gvisor-iterations 0)");
    }
    match image_dir(image) {
        Some(dir) if image_n > 0 => image_pair(&exe, &dir, image_n, warmup)?,
        _ => println!("image pair skipped (no python-data image, or --image-iterations 0)"),
    }
    Ok(())
}

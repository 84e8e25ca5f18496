//! Ad-hoc timing of the sandbox-start/teardown path. Not a pass/fail test:
//! `cargo test -p warden-cgroups --release --test bench -- --ignored --nocapture`
mod common;

use std::time::{Duration, Instant};

use common::*;
use warden_cgroups::Limits;

fn us(d: &mut [Duration]) -> String {
    d.sort();
    let p = |q: f64| d[((d.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    format!(
        "p50 {:>6.0}us  p90 {:>6.0}us  max {:>6.0}us",
        p(0.5),
        p(0.9),
        p(1.0)
    )
}

fn cycle(env: &Env, label: &str, limits: &Limits, n: usize) {
    let (mut create, mut add, mut destroy, mut empty) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let mut sleep = spawn_sleep();
        let t0 = Instant::now();
        let cg = env.create(&format!("b{i}"), limits);
        let t1 = Instant::now();
        cg.add_pid(sleep.pid()).unwrap();
        let t2 = Instant::now();
        cg.destroy().unwrap();
        let t3 = Instant::now();
        let _ = sleep.wait();
        create.push(t1 - t0);
        add.push(t2 - t1);
        destroy.push(t3 - t2);

        let t0 = Instant::now();
        env.create(&format!("e{i}"), limits).destroy().unwrap();
        empty.push(t0.elapsed());
    }
    eprintln!("{label}: create          {}", us(&mut create));
    eprintln!("{label}: add_pid         {}", us(&mut add));
    eprintln!("{label}: kill+destroy    {}", us(&mut destroy));
    eprintln!("{label}: create+destroy (no process) {}", us(&mut empty));
}

#[test]
#[ignore]
fn bench_cycle() {
    let n = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let all = Limits {
        memory_bytes: Some(256 << 20),
        memory_swap_bytes: Some(0),
        cpu_millicores: Some(500),
        pids_max: Some(64),
    };
    let env = Env::detect("bench");
    cycle(&env, "host(v1) all limits", &all, n);
    cycle(&env, "host(v1) no limits ", &Limits::default(), n);
    if let Some(env) = std::path::Path::new(UNIFIED)
        .exists()
        .then(|| Env::v2("benchv2"))
    {
        cycle(&env, "unified(v2) none   ", &Limits::default(), n);
    }
}

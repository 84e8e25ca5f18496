//! Prometheus metrics: sandboxes running, create latency, execs, errors.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;

struct Metrics {
    registry: Registry,
    running: IntGauge,
    create_seconds: Histogram,
    execs: IntCounter,
    errors: IntCounterVec,
    egress: IntCounterVec,
    snapshot_files: IntCounterVec,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let registry = Registry::new();
        let running = IntGauge::new("warden_sandboxes_running", "Sandboxes running now")
            .expect("static metric definition");
        let create_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "warden_sandbox_create_seconds",
                "Time to create a sandbox, request to ready",
            )
            .buckets(vec![
                0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("static metric definition");
        let execs = IntCounter::new("warden_execs_total", "Commands started in sandboxes")
            .expect("static metric definition");
        let errors = IntCounterVec::new(
            Opts::new("warden_api_errors_total", "Error answers by code"),
            &["code"],
        )
        .expect("static metric definition");
        let egress = IntCounterVec::new(
            Opts::new(
                "warden_egress_attempts_total",
                "Egress proxy attempts by outcome (allowed, denied, failed, dropped from the log)",
            ),
            &["outcome"],
        )
        .expect("static metric definition");
        let snapshot_files = IntCounterVec::new(
            Opts::new(
                "warden_snapshot_files_total",
                "Files taken into snapshots and pauses: read out of the sandbox, or reused from \
                 the pause it was resumed from (untouched since)",
            ),
            &["how"],
        )
        .expect("static metric definition");
        for c in [
            Box::new(egress.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(snapshot_files.clone()),
            Box::new(running.clone()),
            Box::new(create_seconds.clone()),
            Box::new(execs.clone()),
            Box::new(errors.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            running,
            create_seconds,
            execs,
            errors,
            egress,
            snapshot_files,
        }
    })
}

/// Files a snapshot took: `read` out of the sandbox, `reused` from its base.
pub fn snapshot_files(read: u64, reused: u64) {
    let m = metrics();
    m.snapshot_files.with_label_values(&["read"]).inc_by(read);
    m.snapshot_files
        .with_label_values(&["reused"])
        .inc_by(reused);
}

pub fn egress_attempt(outcome: &str) {
    metrics().egress.with_label_values(&[outcome]).inc();
}

pub fn sandbox_started(seconds: f64) {
    let m = metrics();
    m.running.inc();
    m.create_seconds.observe(seconds);
}

pub fn sandbox_ended() {
    metrics().running.dec();
}

pub fn exec() {
    metrics().execs.inc();
}

pub fn error(code: &str) {
    metrics().errors.with_label_values(&[code]).inc();
}

pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&metrics().registry.gather(), &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

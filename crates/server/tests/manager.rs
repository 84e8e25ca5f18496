//! The manager's own rules, in process and without root: a fake runtime
//! stands in for the kernel (each "sandbox" is a control channel whose far
//! end answers the protocol's handshake), while the store is a real SQLite
//! database. What is tested here is Warden's bookkeeping: tenant quotas,
//! the node's capacity, the isolation check, and that everything a sandbox
//! held is given back when it ends. The real kernel's part has its own
//! suites (`crates/cli/tests`).

mod common;

use common::{world, Init};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use warden_server::e2b::envd::EnvdSandboxes;
use warden_server::service::Error;
use warden_spec::Isolation;
use warden_store::{now_ms, Quotas, SandboxState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_quotas_bound_its_sandboxes_and_come_back_when_they_end() {
    let w = world(Init::Handshake, 100).await;
    let quotas = Quotas {
        max_sandboxes: 2,
        max_memory_bytes: 1 << 30,
        ..Quotas::default()
    };
    let a = w.tenant("a", quotas).await;
    let b = w.tenant("b", quotas).await;
    let first = w.create(&a, 256).await.expect("first");
    w.create(&a, 256).await.expect("second");
    // A third is past max_sandboxes: refused as a quota, nothing started.
    let started = w.runtime.started.load(Ordering::SeqCst);
    match w.create(&a, 256).await {
        Err(Error::Quota(m)) => assert!(m.contains("max_sandboxes"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.runtime.started.load(Ordering::SeqCst), started);
    // Another tenant's quota is its own.
    let other = w.create(&b, 900).await.expect("tenant b");
    // Memory: b has 124 MiB left of its GiB.
    match w.create(&b, 256).await {
        Err(Error::Quota(m)) => assert!(m.contains("max_memory_bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Ending a sandbox gives its share back, and its record says how.
    w.delete(&a, &first).await;
    w.create(&a, 256).await.expect("room again");
    let rec = a.get_sandbox(&first).await.expect("read").expect("record");
    assert_eq!(rec.state, SandboxState::Stopped);
    w.delete(&b, &other).await;
    w.create(&b, 256).await.expect("b has room again");
    assert_eq!(w.runtime.destroyed.load(Ordering::SeqCst), 2);
    assert_eq!(w.manager.running_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_capacity_is_shared_and_refused_as_capacity() {
    let w = world(Init::Handshake, 2).await;
    let a = w.tenant("a", Quotas::default()).await;
    let b = w.tenant("b", Quotas::default()).await;
    let first = w.create(&a, 64).await.expect("first");
    w.create(&b, 64).await.expect("second");
    match w.create(&b, 64).await {
        Err(e @ Error::Capacity(_)) => {
            assert!(e.passes(), "capacity passes: a job waits for it");
            assert!(e.to_string().contains("max_sandboxes"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    w.delete(&a, &first).await;
    w.create(&b, 64).await.expect("a place freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_the_runtime_refuses_is_isolation_unavailable() {
    let w = world(Init::Handshake, 10).await;
    w.manager
        .check_isolation(Isolation::Native)
        .await
        .expect("native");
    match w.manager.check_isolation(Isolation::Gvisor).await {
        Err(Error::IsolationUnavailable(m)) => assert!(m.contains("not in this test"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.runtime.started.load(Ordering::SeqCst), 0);
}

/// What the E2B front door keeps per sandbox lives in the E2B module, by
/// sandbox id, and is dropped when the sandbox ends (the manager's end
/// hook): a request that finds the sandbox already ended is given a state
/// that is not kept, so nothing is left behind for an id that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2b_state_kept_per_sandbox_ends_with_the_sandbox() {
    let w = world(Init::Handshake, 10).await;
    let envd = Arc::new(EnvdSandboxes::default());
    w.manager.on_end({
        let envd = envd.clone();
        Box::new(move |id| envd.forget(id))
    });
    let a = w.tenant("a", Quotas::default()).await;
    let first = w.create(&a, 64).await.expect("first");
    let second = w.create(&a, 64).await.expect("second");
    let live = w.manager.get(a.tenant_id(), &first).expect("live");
    let kept = envd.of(&live);
    assert!(Arc::ptr_eq(&kept, &envd.of(&live)), "one state per sandbox");
    envd.of(&w.manager.get(a.tenant_id(), &second).expect("live"));
    assert_eq!(envd.len(), 2);
    w.delete(&a, &first).await;
    assert_eq!(envd.len(), 1, "the ended sandbox's state is dropped");
    // A request still holding the ended sandbox gets a state not kept.
    let late = envd.of(&live);
    assert!(!Arc::ptr_eq(&kept, &late));
    assert_eq!(envd.len(), 1);
    w.delete(&a, &second).await;
    assert!(envd.is_empty());
}

/// Expiry: the expiry loop ends a sandbox once it is past its time —
/// recorded `timed_out`, audited `sandbox.timeout` by `system` — and
/// leaves one within its time alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_loop_ends_sandboxes_past_their_time_and_only_those() {
    let w = world(Init::Handshake, 10).await;
    let a = w.tenant("a", Quotas::default()).await;
    let due = w.create(&a, 64).await.expect("due");
    let kept = w.create(&a, 64).await.expect("kept");
    let live = w.manager.get(a.tenant_id(), &due).expect("live");
    w.manager.extend(&live, now_ms() - 1);
    drop(live);
    let expiry = tokio::spawn(w.manager.clone().expire_loop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while w.manager.get(a.tenant_id(), &due).is_some() {
        assert!(std::time::Instant::now() < deadline, "not expired in 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Its record is written as teardown ends: wait for it too.
    let rec = loop {
        let rec = a.get_sandbox(&due).await.expect("read").expect("record");
        if rec.state != SandboxState::Running {
            break rec;
        }
        assert!(std::time::Instant::now() < deadline, "no end recorded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(rec.state, SandboxState::TimedOut);
    assert_eq!(rec.end_reason.as_deref(), Some("timeout"));
    // The audit entry is appended after the record is written.
    let (audit, timeout) = loop {
        let audit = w.audit(&a).await;
        if let Some(e) = audit.iter().find(|e| e.action == "sandbox.timeout") {
            let e = e.clone();
            break (audit, e);
        }
        assert!(std::time::Instant::now() < deadline, "not audited");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    expiry.abort();
    assert!(
        w.manager.get(a.tenant_id(), &kept).is_some(),
        "within its time"
    );
    assert_eq!(
        (timeout.target.as_str(), timeout.actor.as_str()),
        (due.as_str(), "system")
    );
    assert!(!audit.iter().any(|e| e.target == kept.as_str()));
}

//! Creating sandboxes through the service, in process and without root
//! (a fake runtime stands in for the kernel, see `common/`): what a create
//! is checked for before anything starts (labels, the operator's caps, the
//! tenant's quotas), that every attempt is audited with its outcome, and
//! that labels select sandboxes afterwards.

mod common;

use common::{app, caller, world, Init, World};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use warden_server::api::CreateSandbox;
use warden_server::service::{sandboxes, Error};
use warden_store::{Quotas, SandboxFilter, TenantStore};

fn request(v: serde_json::Value) -> CreateSandbox {
    serde_json::from_value(v).expect("a create request")
}

/// The outcomes of the tenant's `sandbox.create` entries, in order.
async fn creates(w: &World, store: &TenantStore) -> Vec<String> {
    w.audit(store)
        .await
        .into_iter()
        .filter(|e| e.action == "sandbox.create")
        .map(|e| e.outcome)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_are_checked_before_anything_starts_and_select_sandboxes_after() {
    let w = world(Init::Handshake, 10).await;
    let st = app(&w, |_| {});
    let a = w.tenant("a", Quotas::default()).await;
    let who = caller(&a);

    let too_many: BTreeMap<String, String> = (0..33)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let refused = [
        (serde_json::json!({"labels": too_many}), "at most 32 labels"),
        (serde_json::json!({"labels": {"a b": "x"}}), "label key"),
        (
            serde_json::json!({"labels": {"k".repeat(64): "x"}}),
            "label key",
        ),
        (
            serde_json::json!({"labels": {"ok": "tab\there"}}),
            "printable",
        ),
        (
            serde_json::json!({"labels": {"ok": "v".repeat(257)}}),
            "printable",
        ),
    ];
    for (req, says) in refused {
        match sandboxes::create_audited(&who, &st, request(req)).await {
            Err(Error::Invalid(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        w.runtime.started.load(Ordering::SeqCst),
        0,
        "nothing started"
    );

    let team = serde_json::json!({"labels": {"team": "data", "app.example/run": "7"}});
    let first = sandboxes::create_audited(&who, &st, request(team))
        .await
        .expect("labelled");
    let other = serde_json::json!({"labels": {"team": "web"}});
    sandboxes::create_audited(&who, &st, request(other))
        .await
        .expect("another");
    let mut filter = SandboxFilter::default();
    filter.labels.insert("team".into(), "data".into());
    let found = a.list_sandboxes(&filter, None, 100).await.expect("list");
    let ids: Vec<&str> = found.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str()]);
    assert_eq!(
        found.items[0]
            .labels
            .get("app.example/run")
            .map(String::as_str),
        Some("7")
    );

    let outcomes = creates(&w, &a).await;
    assert_eq!(
        outcomes,
        ["bad_request"; 5]
            .iter()
            .chain(["ok"; 2].iter())
            .copied()
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_caps_and_the_tenants_quotas_refuse_before_anything_starts() {
    let w = world(Init::Handshake, 10).await;
    let st = app(&w, |c| c.limits.max_cpus = 1);
    let quotas = Quotas {
        max_sandboxes: 1,
        ..Quotas::default()
    };
    let a = w.tenant("a", quotas).await;
    let who = caller(&a);

    // More CPUs than the operator lets any one sandbox have.
    match sandboxes::create_audited(
        &who,
        &st,
        request(serde_json::json!({"limits": {"cpus": 2}})),
    )
    .await
    {
        Err(Error::Invalid(m)) => assert!(m.contains("max_cpus"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.runtime.started.load(Ordering::SeqCst), 0);

    // One sandbox is all the tenant may have: the second is its quota's.
    sandboxes::create_audited(&who, &st, request(serde_json::json!({})))
        .await
        .expect("first");
    match sandboxes::create_audited(&who, &st, request(serde_json::json!({}))).await {
        Err(Error::Quota(m)) => assert!(m.contains("max_sandboxes"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.runtime.started.load(Ordering::SeqCst), 1);
    assert_eq!(
        creates(&w, &a).await,
        ["bad_request", "ok", "quota_exceeded"]
    );
}

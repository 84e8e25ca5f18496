//! Checkpoint and restore on the gVisor tier, below the server: a sandbox
//! frozen and checkpointed comes back from its image with its processes
//! and files, twice from one image, on a new control channel; a freeze
//! undone on the same channel (what a failed checkpoint does) leaves the
//! sandbox working; the native tier refuses a checkpoint and runs on;
//! nothing is left behind.

mod common;

use common::{gvisor_leftovers, gvisor_runtime, Sb, Tier};
use warden_protocol::Client;
use warden_runtime::Runtime;
use warden_spec::{Isolation, SandboxSpec};

fn spec() -> SandboxSpec {
    SandboxSpec {
        isolation: Isolation::Gvisor,
        ..SandboxSpec::default()
    }
}

/// Restores `image` and takes over its init.
async fn restored(image: &std::path::Path) -> Sb {
    let mut sandbox = gvisor_runtime()
        .restore(&spec(), image)
        .expect("restore the checkpoint");
    let control = sandbox.take_control().expect("control channel");
    control.set_nonblocking(true).unwrap();
    let stream = tokio::net::UnixStream::from_std(control).unwrap();
    let client = Client::reattach(stream).await.expect("thaw the init");
    Sb::adopt(sandbox, client, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_restores_processes_and_files_on_a_new_channel() {
    let mut sb = Sb::on(Tier::Gvisor, spec()).await;
    let id = sb.sandbox.as_ref().unwrap().id().to_string();
    sb.ok("echo kept > /scratch/f; \
         (sh -c 'echo $$ > /tmp/pid; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 &); \
         while ! test -s /tmp/pid; do sleep 0.05; done")
        .await;
    let pid = sb.ok("cat /tmp/pid").await;

    let dir = tempfile::tempdir().unwrap();
    sb.client.freeze().await.expect("freeze");
    sb.sandbox
        .as_mut()
        .unwrap()
        .checkpoint(dir.path())
        .expect("checkpoint");
    sb.destroy();
    assert!(gvisor_leftovers(&id).is_empty());

    // Twice from one image: each restore is a sandbox of its own.
    for _ in 0..2 {
        let back = restored(dir.path()).await;
        let out = back
            .ok("cat /scratch/f; kill -0 $(cat /tmp/pid) && cat /tmp/pid")
            .await;
        assert_eq!(out, format!("kept\n{pid}"));
        back.ok("echo changed > /scratch/f").await;
        back.destroy();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_undone_on_the_same_channel_leaves_the_sandbox_working() {
    let sb = Sb::on(Tier::Gvisor, spec()).await;
    sb.ok("echo one > /scratch/f").await;
    sb.client.freeze().await.expect("freeze");
    // A request made while frozen waits for the thaw, then is answered.
    let waiting = sb
        .client
        .exec_collect(warden_protocol::ExecRequest::shell("cat /scratch/f"));
    let (thawed, out) = tokio::join!(
        async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            sb.client.thaw().await
        },
        waiting
    );
    thawed.expect("thaw");
    assert_eq!(out.expect("exec").stdout, b"one\n");
    assert_eq!(sb.ok("echo two").await, "two\n");
    sb.destroy();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_tier_refuses_a_checkpoint_and_runs_on() {
    let mut sb = Sb::on(Tier::Native, SandboxSpec::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let err = sb
        .sandbox
        .as_mut()
        .unwrap()
        .checkpoint(dir.path())
        .expect_err("a native checkpoint");
    assert!(err.to_string().contains("cannot keep"), "{err}");
    assert_eq!(sb.ok("echo still").await, "still\n");
    let refused = common::runtime().restore(&SandboxSpec::default(), dir.path());
    assert!(refused.is_err());
    sb.destroy();
}

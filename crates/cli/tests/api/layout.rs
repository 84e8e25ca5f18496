//! The sandbox's user and root through `/v1`: `"user": "user"` is E2B's
//! account (uid 1001, a writable home at /home/user that is also the
//! working directory), `"writable_root": true` gives the sandbox a layer of
//! its own over the image; both shown on the sandbox, on both tiers.

use crate::harness::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_account_and_writable_root_over_the_api() {
    let server = Server::start_with(RuntimeDirs::private());
    let (_, a) = server.admin().tenant("layout", None).await;

    for tier in ["native", "gvisor"] {
        let sb = a
            .sandbox(json!({"isolation": tier, "user": "user", "writable_root": true}))
            .await;
        let shown = a.get(&format!("/v1/sandboxes/{sb}")).await;
        assert_eq!(shown.body["user"], "user", "{}", shown.text);
        assert_eq!(shown.body["writable_root"], true, "{}", shown.text);
        assert_eq!(
            a.ok(&sb, "id -un; pwd; echo $HOME; echo hi > ~/x && cat x")
                .await,
            "user\n/home/user\n/home/user\nhi\n",
            "{tier}"
        );
        // The image stays root's: a writable root changes nothing of that.
        let v = a.sh(&sb, "touch /usr/local/x").await;
        assert_ne!(v["exit_code"], 0, "{tier}: {v}");
        assert!(
            v["stderr"].as_str().unwrap().contains("Permission denied"),
            "{tier}: {v}"
        );

        // Root of a writable-root sandbox installs where root would.
        let root = a
            .sandbox(json!({"isolation": tier, "user": "root", "writable_root": true}))
            .await;
        let name = format!("warden-layout-{}-{tier}", std::process::id());
        assert_eq!(
            a.ok(
                &root,
                &format!("echo x > /usr/local/{name} && mkdir /workspace && cat /usr/local/{name}")
            )
            .await,
            "x\n",
            "{tier}"
        );
        // Nothing of the sandbox's reaches the host's /usr/local.
        assert!(!std::path::Path::new("/usr/local").join(&name).exists());

        // Control: the default sandbox is `sandbox` on a read-only root.
        let plain = a.sandbox(json!({"isolation": tier})).await;
        let shown = a.get(&format!("/v1/sandboxes/{plain}")).await;
        assert_eq!(shown.body["user"], "sandbox", "{}", shown.text);
        assert_eq!(shown.body["writable_root"], false, "{}", shown.text);
        assert_eq!(a.ok(&plain, "id -un; pwd").await, "sandbox\n/scratch\n");
        let v = a.sh(&plain, "mkdir /workspace").await;
        assert!(
            v["stderr"]
                .as_str()
                .unwrap()
                .contains("Read-only file system"),
            "{tier}: {v}"
        );
    }

    let m = refused(
        &a.post("/v1/sandboxes", json!({"user": "admin"})).await,
        400,
        "bad_request",
    );
    assert!(m.contains("\"sandbox\", \"user\" or \"root\""), "{m}");
}

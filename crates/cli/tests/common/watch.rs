//! Directory-watch scenarios, run against every isolation tier
//! (`behaviour.rs` on the native one, `gvisor.rs` under gVisor).

use super::{text, Sb};
use std::time::Duration;
use tokio::time::timeout;
use warden_protocol::{ErrorKind, FsEvent, FsEventKind, Request, Response, Watch};

/// Longest wait for an expected event (gVisor is slower than native).
const PATIENCE: Duration = Duration::from_secs(10);

fn show(events: &[FsEvent]) -> Vec<(FsEventKind, String)> {
    events.iter().map(|e| (e.kind, text(&e.name))).collect()
}

/// Collects events until one matches `last` (panics after `PATIENCE`),
/// then whatever else arrives within `linger`.
pub async fn collect_until(
    w: &mut Watch,
    last: (FsEventKind, &str),
    linger: Duration,
) -> Vec<FsEvent> {
    let mut seen = Vec::new();
    let found = |seen: &[FsEvent]| {
        seen.iter()
            .any(|e| e.kind == last.0 && e.name == last.1.as_bytes())
    };
    while !found(&seen) {
        match timeout(PATIENCE, w.next()).await {
            Ok(Ok(Some(batch))) => seen.extend(batch),
            other => panic!("waiting for {last:?}: {other:?}; seen {:?}", show(&seen)),
        }
    }
    while let Ok(Ok(Some(batch))) = timeout(linger, w.next()).await {
        seen.extend(batch);
    }
    seen
}

/// The kinds reported for `name`, in order, repeats collapsed.
fn kinds_of(events: &[FsEvent], name: &str) -> Vec<FsEventKind> {
    let mut v: Vec<FsEventKind> = events
        .iter()
        .filter(|e| e.name == name.as_bytes())
        .map(|e| e.kind)
        .collect();
    v.dedup();
    v
}

fn has(events: &[FsEvent], kind: FsEventKind, name: &str) -> bool {
    events
        .iter()
        .any(|e| e.kind == kind && e.name == name.as_bytes())
}

/// Create, write, chmod, rename, remove in a plain watch: kinds and names as
/// fsnotify reports them; a subdirectory's contents are not reported.
pub async fn events_and_names(sb: &Sb) {
    use FsEventKind::*;
    sb.ok("mkdir /scratch/w").await;
    let mut w = sb.client.watch("/scratch/w", false).await.unwrap();
    sb.ok(
        "cd /scratch/w && echo a > f && echo b >> f && chmod 600 f && mv f g && rm g \
           && mkdir sub && echo x > sub/inner && touch done",
    )
    .await;
    let seen = collect_until(&mut w, (Create, "done"), Duration::from_millis(300)).await;
    assert_eq!(
        kinds_of(&seen, "f"),
        [Create, Write, Chmod, Rename],
        "{:?}",
        show(&seen)
    );
    assert_eq!(kinds_of(&seen, "g"), [Create, Remove], "{:?}", show(&seen));
    assert!(has(&seen, Create, "sub"), "{:?}", show(&seen));
    assert!(
        seen.iter().all(|e| !e.name.starts_with(b"sub/")),
        "a plain watch reported inside a subdirectory: {:?}",
        show(&seen)
    );
    w.cancel().await;
}

/// A recursive watch follows directories that exist, appear later (with
/// what was created in them before their watch), and move.
pub async fn recursive_watch(sb: &Sb) {
    use FsEventKind::*;
    sb.ok("mkdir -p /scratch/r/pre/deep").await;
    let mut w = sb.client.watch("/scratch/r", true).await.unwrap();
    sb.ok("echo y > /scratch/r/pre/deep/p.txt").await;
    collect_until(&mut w, (Create, "pre/deep/p.txt"), Duration::ZERO).await;
    // A new directory and a file in it, faster than any watch could be added.
    sb.ok("mkdir -p /scratch/r/a/b && echo x > /scratch/r/a/b/f.txt")
        .await;
    let seen = collect_until(&mut w, (Create, "a/b/f.txt"), Duration::ZERO).await;
    assert!(has(&seen, Create, "a"), "{:?}", show(&seen));
    // A moved directory is reported under its new name from then on.
    sb.ok("mv /scratch/r/a /scratch/r/moved && echo z > /scratch/r/moved/b/z.txt")
        .await;
    let seen = collect_until(
        &mut w,
        (Create, "moved/b/z.txt"),
        Duration::from_millis(300),
    )
    .await;
    assert!(has(&seen, Rename, "a"), "{:?}", show(&seen));
    assert!(has(&seen, Create, "moved"), "{:?}", show(&seen));
    assert!(
        seen.iter().all(|e| !e.name.starts_with(b"a/")),
        "stale name after the move: {:?}",
        show(&seen)
    );
    w.cancel().await;
}

/// `Cancel` ends the stream with `Done`, unknown ids are fine, and the init
/// keeps serving.
pub async fn cancel_ends_with_done(sb: &Sb) {
    sb.ok("mkdir /scratch/c").await;
    let c = &sb.client;
    let mut s = c
        .stream(Request::Watch {
            path: "/scratch/c".into(),
            recursive: true,
        })
        .unwrap();
    assert_eq!(s.next().await.unwrap(), Some(Response::Watching));
    sb.ok("touch /scratch/c/x").await;
    let id = s.id();
    assert_eq!(
        c.call(Request::Cancel { stream: id }).await.unwrap(),
        Response::Done
    );
    let last = loop {
        match timeout(PATIENCE, s.next()).await.expect("stream ended") {
            Ok(Some(Response::FsEvents(_))) => continue,
            other => break other,
        }
    };
    assert_eq!(last.unwrap(), Some(Response::Done));
    assert_eq!(s.next().await.unwrap(), None);
    // The same id again, and one that never was: nothing to do, still Done.
    for stream in [id, 999_999] {
        assert_eq!(
            c.call(Request::Cancel { stream }).await.unwrap(),
            Response::Done
        );
    }
    assert_eq!(sb.ok("echo alive").await, "alive\n");
    // The client's own cancel.
    let w = c.watch("/scratch/c", false).await.unwrap();
    w.cancel().await;
    c.ping().await.unwrap();
}

/// What cannot be watched, and why.
pub async fn refusals(sb: &Sb) {
    sb.ok(
        "mkdir -p /scratch/d && touch /scratch/file && ln -s /etc /scratch/etc-link \
           && ln -s /scratch /tmp/via-link",
    )
    .await;
    let c = &sb.client;
    let kind = |path: &'static str, recursive: bool| async move {
        match c.watch(path, recursive).await {
            Ok(_) => panic!("a watch on {path} was accepted"),
            Err(e) => (e.remote_kind(), e.to_string()),
        }
    };
    let (k, msg) = kind("/scratch/missing", false).await;
    assert_eq!(k, Some(ErrorKind::NotFound), "{msg}");
    let (k, msg) = kind("/scratch/file", false).await;
    assert_eq!(k, Some(ErrorKind::NotADirectory), "{msg}");
    // A symlink is never followed, to the sandbox's own /etc or anywhere:
    // neither as the watched directory nor on the way to it.
    for link in ["/scratch/etc-link", "/tmp/via-link/d"] {
        let (k, msg) = kind(link, true).await;
        assert_eq!(k, Some(ErrorKind::PermissionDenied), "{link}: {msg}");
        assert!(msg.contains("symlink"), "{msg}");
    }
    let (k, msg) = kind("/scratch/d/../d", false).await;
    assert_eq!(k, Some(ErrorKind::BadRequest), "{msg}");
    // Relative paths are relative to the workdir, as for every file request.
    let w = c.watch("d", false).await.unwrap();
    w.cancel().await;
}

/// At most 32 watches per sandbox; a dropped `Watch` frees its slot.
pub async fn per_sandbox_limit(sb: &Sb) {
    sb.ok("mkdir /scratch/l").await;
    let c = &sb.client;
    let mut watches = Vec::new();
    for _ in 0..32 {
        watches.push(c.watch("/scratch/l", false).await.unwrap());
    }
    let err = c
        .watch("/scratch/l", false)
        .await
        .err()
        .expect("33rd watch");
    assert_eq!(err.remote_kind(), Some(ErrorKind::TooLarge), "{err}");
    assert!(err.to_string().contains("at most 32"), "{err}");
    drop(watches.pop());
    watches.push(c.watch("/scratch/l", false).await.unwrap());
    // Every one of them still reports.
    sb.ok("touch /scratch/l/x").await;
    for w in &mut watches {
        collect_until(w, (FsEventKind::Create, "x"), Duration::ZERO).await;
    }
    for w in watches {
        w.cancel().await;
    }
}

/// The watched directory removed ends the stream with an error, after the
/// removals inside it.
pub async fn removed_directory_ends_the_stream(sb: &Sb) {
    sb.ok("mkdir -p /scratch/gone/sub && touch /scratch/gone/sub/f")
        .await;
    let mut w = sb.client.watch("/scratch/gone", true).await.unwrap();
    sb.ok("rm -r /scratch/gone").await;
    let mut seen = Vec::new();
    let err = loop {
        match timeout(PATIENCE, w.next()).await.expect("stream ended") {
            Ok(Some(batch)) => seen.extend(batch),
            Ok(None) => panic!("ended with Done"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.remote_kind(), Some(ErrorKind::Io), "{err}");
    assert!(
        err.to_string()
            .contains("the watched directory was removed"),
        "{err}"
    );
    assert!(
        has(&seen, FsEventKind::Remove, "sub/f"),
        "{:?}",
        show(&seen)
    );
    assert!(has(&seen, FsEventKind::Remove, "sub"), "{:?}", show(&seen));
    sb.client.ping().await.unwrap();
}

/// A host that stops reading ends the watch with "event queue overflowed"
/// (after what was queued) instead of growing the init's memory. The
/// events have long names, so the init's 4 MiB bound is reached with fewer
/// events than the kernel queues (16384 by default), and the writer paces
/// itself so the init keeps up with the kernel: the overflow seen is the
/// init's own.
pub async fn unread_watch_overflows(sb: &Sb) {
    sb.ok("mkdir /scratch/o").await;
    let mut w = sb.client.watch("/scratch/o", false).await.unwrap();
    // Alternating files, so the kernel cannot merge repeated events.
    sb.ok(r#"python3 -c "
import os, time
a = os.open('/scratch/o/' + 'a' * 250, os.O_WRONLY | os.O_CREAT)
b = os.open('/scratch/o/' + 'b' * 250, os.O_WRONLY | os.O_CREAT)
for i in range(15000):
    os.write(a, b'x'); os.write(b, b'x')
    if i % 250 == 0:
        time.sleep(0.002)
""#)
        .await;
    let mut n = 0usize;
    let err = loop {
        match timeout(PATIENCE, w.next()).await.expect("stream ended") {
            Ok(Some(batch)) => n += batch.len(),
            Ok(None) => panic!("ended with Done after {n} events"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.remote_kind(), Some(ErrorKind::Io), "{err}");
    assert!(err.to_string().contains("event queue overflowed"), "{err}");
    // 4 MiB of 266-byte events, all delivered before the error.
    assert!(n > 15_000, "only {n} events before the overflow");
    assert_eq!(sb.ok("echo alive").await, "alive\n");
}

//! The /etc template cache (`cache.rs`, `native/templates.rs`) against a
//! source directory of the test's own standing in for the host's /etc:
//! reused while the source is unchanged, rebuilt when it changes, never
//! trusted half-written, and stale entries collected once unused.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warden_runtime::cache::{self, MARKER};
use warden_runtime::native::templates::{self, PerSandbox};

/// A state directory and a source /etc with two of the names the template
/// takes from the host (`os-release`, a file; `ssl`, a directory).
struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    source: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let source = dir.path().join("etc");
    fs::create_dir_all(source.join("ssl/certs")).unwrap();
    fs::write(source.join("os-release"), "NAME=first\n").unwrap();
    fs::write(source.join("ssl/certs/a.pem"), "cert a\n").unwrap();
    std::os::unix::fs::symlink("a.pem", source.join("ssl/certs/link.pem")).unwrap();
    // Out of the window in which a change could go unnoticed (`cache.rs`).
    settle();
    Fixture {
        _dir: dir,
        state,
        source,
    }
}

/// Waits out the window in which a just-made change makes an untrusted key.
fn settle() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn etc(f: &Fixture) -> cache::Entry {
    templates::obtain_etc(&f.state.join("templates"), &f.source, PerSandbox::Links).expect("etc")
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).expect("stat").ino()
}

/// Entry and work-in-progress names in the cache directory.
fn names(f: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(f.state.join("templates"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_unchanged_source_is_built_once() {
    let f = fixture();
    let first = etc(&f);
    assert!(!first.is_private());
    let tree = first.tree();
    assert_eq!(
        fs::read_to_string(tree.join("os-release")).unwrap(),
        "NAME=first\n"
    );
    assert_eq!(
        fs::read_link(tree.join("ssl/certs/link.pem")).unwrap(),
        Path::new("a.pem")
    );
    assert!(tree.join("passwd").is_file(), "Warden's own files are in");
    let (dir_ino, file_ino) = (ino(first.dir()), ino(&tree.join("os-release")));
    drop(first);
    // Released, but not removed: the next user takes the very same files.
    let second = etc(&f);
    assert_eq!(ino(second.dir()), dir_ino, "rebuilt although unchanged");
    assert_eq!(ino(&second.tree().join("os-release")), file_ino);
    assert_eq!(names(&f).len(), 1, "{:?}", names(&f));
}

#[test]
fn a_changed_source_is_rebuilt_and_the_old_entry_collected() {
    let f = fixture();
    let old = etc(&f);
    let old_dir = old.dir().to_path_buf();
    // In place, as an editor saving without a rename would.
    fs::write(f.source.join("os-release"), "NAME=second\n").unwrap();
    // Changed this very moment: a key could miss another change within the
    // same timestamp tick, so the build is private and goes with its user.
    let racy = etc(&f);
    assert!(racy.is_private());
    assert_eq!(
        fs::read_to_string(racy.tree().join("os-release")).unwrap(),
        "NAME=second\n"
    );
    let racy_dir = racy.dir().to_path_buf();
    drop(racy);
    assert!(!racy_dir.exists(), "a private build outlived its user");
    settle();
    let new = etc(&f);
    assert!(!new.is_private());
    assert_ne!(new.dir(), old_dir);
    assert_eq!(
        fs::read_to_string(new.tree().join("os-release")).unwrap(),
        "NAME=second\n"
    );
    // The old one is still held (a live runtime's sandboxes bind it).
    assert!(old_dir.join(MARKER).is_file(), "removed while in use");
    drop(old);
    drop(new);
    // A symlink replaced inside a directory changes only the directory.
    fs::remove_file(f.source.join("ssl/certs/link.pem")).unwrap();
    std::os::unix::fs::symlink("b.pem", f.source.join("ssl/certs/link.pem")).unwrap();
    settle();
    let newer = etc(&f);
    assert_eq!(
        fs::read_link(newer.tree().join("ssl/certs/link.pem")).unwrap(),
        Path::new("b.pem")
    );
    // Unused stale entries are gone once a newer one is obtained.
    assert!(!old_dir.exists(), "a stale entry was kept");
    assert_eq!(names(&f).len(), 1, "{:?}", names(&f));
}

#[test]
fn an_entry_without_its_marker_is_never_used() {
    let f = fixture();
    let first = etc(&f);
    let dir = first.dir().to_path_buf();
    drop(first);
    // What a builder that died before finishing would leave at the name,
    // and something that must never reach a sandbox.
    fs::remove_file(dir.join(MARKER)).unwrap();
    fs::write(dir.join("tree/poison"), "half-written").unwrap();
    let again = etc(&f);
    assert_eq!(again.dir(), dir, "same inputs, same name");
    assert!(again.dir().join(MARKER).is_file());
    assert!(
        !again.tree().join("poison").exists(),
        "a half-written entry was used"
    );
    // The same for a marker naming other inputs.
    drop(again);
    fs::write(dir.join(MARKER), "0000").unwrap();
    fs::write(dir.join("tree/poison"), "other key").unwrap();
    let third = etc(&f);
    assert!(!third.tree().join("poison").exists());
    assert_eq!(names(&f).len(), 1, "{:?}", names(&f));
}

#[test]
fn concurrent_builders_agree_on_one_entry() {
    let f = fixture();
    let entries: Vec<cache::Entry> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8).map(|_| s.spawn(|| etc(&f))).collect();
        hs.into_iter().map(|h| h.join().expect("builder")).collect()
    });
    let first = ino(entries[0].dir());
    for e in &entries {
        assert_eq!(ino(e.dir()), first, "two entries in use for one key");
        assert_eq!(
            fs::read_to_string(e.tree().join("os-release")).unwrap(),
            "NAME=first\n"
        );
    }
    // The losers' builds are gone, not left as leftovers.
    assert_eq!(names(&f).len(), 1, "{:?}", names(&f));
}

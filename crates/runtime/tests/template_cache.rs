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

/// Where the key of the last walk of the source is remembered.
const MEMO: &str = "memo.etc";

fn etc(f: &Fixture) -> cache::Entry {
    templates::obtain_etc(&f.state.join("templates"), &f.source, PerSandbox::Links).expect("etc")
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).expect("stat").ino()
}

/// Entry and work-in-progress names in the cache directory (not the
/// memo of the key, a file of its own).
fn names(f: &Fixture) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(f.state.join("templates"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != MEMO)
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

/// The memo spares the walk: a later process takes the key it records as
/// long as every input it names is unchanged, and walks again otherwise.
#[test]
fn the_key_is_remembered_until_an_input_changes() {
    let f = fixture();
    let first = etc(&f);
    let real = first
        .dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    drop(first);
    let memo_path = f.state.join("templates").join(MEMO);
    let memo: serde_json::Value =
        serde_json::from_slice(&fs::read(&memo_path).expect("a memo is written")).unwrap();
    let key = memo["key"].as_str().unwrap().to_string();
    assert_eq!(cache::entry_name("etc", &key), real);
    // Proof that the memo is what gives the key: one it records is used
    // (an entry under that name is built, from the real source).
    let planted = "ab".repeat(32);
    let mut forged = memo.clone();
    forged["key"] = planted.clone().into();
    fs::write(&memo_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let from_memo = etc(&f);
    assert_eq!(
        from_memo.dir().file_name().unwrap().to_string_lossy(),
        cache::entry_name("etc", &planted)
    );
    assert_eq!(
        fs::read_to_string(from_memo.tree().join("os-release")).unwrap(),
        "NAME=first\n"
    );
    drop(from_memo);
    // Any input changed (here a file deep in a directory, in place): the
    // memo is not trusted, the walk runs, and the memo is rewritten.
    fs::write(f.source.join("ssl/certs/a.pem"), "cert a, renewed\n").unwrap();
    settle();
    let walked = etc(&f);
    assert_ne!(
        walked.dir().file_name().unwrap().to_string_lossy(),
        cache::entry_name("etc", &planted),
        "a memo with a changed input was trusted"
    );
    assert_eq!(
        fs::read_to_string(walked.tree().join("ssl/certs/a.pem")).unwrap(),
        "cert a, renewed\n"
    );
    let rewritten: serde_json::Value =
        serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap();
    assert_eq!(
        cache::entry_name("etc", rewritten["key"].as_str().unwrap()),
        walked.dir().file_name().unwrap().to_string_lossy()
    );
    drop(walked);
    // A name the template takes appearing where there was none is a
    // change too (its absence is an input).
    fs::write(f.source.join("timezone"), "Etc/UTC\n").unwrap();
    settle();
    let grown = etc(&f);
    assert_eq!(
        fs::read_to_string(grown.tree().join("timezone")).unwrap(),
        "Etc/UTC\n"
    );
    drop(grown);
    // A memo that does not parse is ignored (and replaced).
    fs::write(&memo_path, "{ half a memo").unwrap();
    let again = etc(&f);
    assert_eq!(
        fs::read_to_string(again.tree().join("timezone")).unwrap(),
        "Etc/UTC\n"
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&fs::read(&memo_path).unwrap()).is_ok());
}

/// A directory image's /etc becomes one template of its own: the image's
/// files (its `passwd` and `shadow` replaced by Warden's or left out), the
/// per-sandbox names as links, one kind per image (two images never share
/// or evict each other's), and rebuilt when the image's /etc changes.
#[test]
fn a_directory_image_gets_its_own_etc_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache_dir = dir.path().join("templates");
    let image = |name: &str, release: &str| {
        let root = dir.path().join(name);
        fs::create_dir_all(root.join("etc/python3")).unwrap();
        fs::write(root.join("etc/os-release"), release).unwrap();
        fs::write(root.join("etc/python3/sitecustomize.py"), "# site\n").unwrap();
        fs::write(root.join("etc/passwd"), "image:x:0:0::/:/bin/sh\n").unwrap();
        fs::write(root.join("etc/shadow"), "image:secret\n").unwrap();
        std::os::unix::fs::symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
        root
    };
    let (one, two) = (image("one", "ID=one\n"), image("two", "ID=two\n"));
    settle();
    let a = templates::obtain_image_etc(&cache_dir, &one).expect("image one");
    let b = templates::obtain_image_etc(&cache_dir, &two).expect("image two");
    assert!(!a.is_private() && !b.is_private());
    let t = a.tree();
    assert_eq!(
        fs::read_to_string(t.join("os-release")).unwrap(),
        "ID=one\n"
    );
    assert_eq!(
        fs::read_to_string(b.tree().join("os-release")).unwrap(),
        "ID=two\n"
    );
    assert_eq!(
        fs::read_to_string(t.join("python3/sitecustomize.py")).unwrap(),
        "# site\n"
    );
    assert_eq!(
        fs::read_link(t.join("localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    let passwd = fs::read_to_string(t.join("passwd")).unwrap();
    assert!(passwd.contains("sandbox:x:1000"), "{passwd}");
    assert!(!passwd.contains("image:"), "the image's accounts leaked in");
    assert!(!t.join("shadow").exists(), "the image's shadow was copied");
    assert_eq!(
        fs::read_link(t.join("hosts")).unwrap(),
        Path::new("../.warden/hosts")
    );
    // Same image again: the same entry, not a rebuild.
    let a_dir = a.dir().to_path_buf();
    drop(a);
    let again = templates::obtain_image_etc(&cache_dir, &one).unwrap();
    assert_eq!(again.dir(), a_dir);
    // Image two's entry survived image one's lookups.
    assert!(b.dir().join(MARKER).is_file());
    drop(again);
    // A change in the image's /etc makes a new template.
    fs::write(one.join("etc/os-release"), "ID=one-updated\n").unwrap();
    settle();
    let updated = templates::obtain_image_etc(&cache_dir, &one).unwrap();
    assert_ne!(updated.dir(), a_dir);
    assert_eq!(
        fs::read_to_string(updated.tree().join("os-release")).unwrap(),
        "ID=one-updated\n"
    );
}

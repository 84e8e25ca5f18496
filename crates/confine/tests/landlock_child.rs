//! Landlock applied for real in forked children.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;

use common::run_in_child;
use warden_confine::{apply_landlock, landlock_abi_version, LandlockPaths, LandlockStatus};

fn expect_denied(what: &str, r: std::io::Result<impl Sized>) -> Result<(), String> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
        Err(e) => Err(format!("{what}: expected EACCES, got {e}")),
        Ok(_) => Err(format!("{what}: expected EACCES, succeeded")),
    }
}

fn ok<T>(what: &str, r: std::io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

struct Tree {
    _dir: tempfile::TempDir,
    ro: std::path::PathBuf,
    rw: std::path::PathBuf,
    none: std::path::PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let (ro, rw, none) = (
        dir.path().join("ro"),
        dir.path().join("rw"),
        dir.path().join("none"),
    );
    for d in [&ro, &rw, &none] {
        fs::create_dir(d).unwrap();
        fs::write(d.join("f.txt"), "data").unwrap();
    }
    Tree {
        _dir: dir,
        ro,
        rw,
        none,
    }
}

#[test]
fn filesystem_rules_enforced() {
    let t = tree();
    let paths = LandlockPaths {
        read_exec: vec![t.ro.clone(), t.ro.join("does-not-exist")],
        read_write: vec![t.rw.clone()],
    };
    let (ro, rw, none) = (t.ro.clone(), t.rw.clone(), t.none.clone());
    let msg = run_in_child(move || {
        let status = apply_landlock(&paths).map_err(|e| format!("{e:?}"))?;
        // allowed
        ok("write in read_write", fs::write(rw.join("new.txt"), "x"))?;
        ok("overwrite in read_write", fs::write(rw.join("f.txt"), "y"))?;
        ok("mkdir in read_write", fs::create_dir(rw.join("sub")))?;
        ok("remove in read_write", fs::remove_file(rw.join("new.txt")))?;
        let got = ok("read read_exec", fs::read_to_string(ro.join("f.txt")))?;
        if got != "data" {
            return Err(format!("read_exec content {got:?}"));
        }
        ok("list read_exec", fs::read_dir(&ro))?;
        // denied
        expect_denied("create in read_exec", fs::write(ro.join("new.txt"), "x"))?;
        expect_denied(
            "write existing in read_exec",
            fs::write(ro.join("f.txt"), "x"),
        )?;
        expect_denied("create outside", fs::write(none.join("new.txt"), "x"))?;
        expect_denied("read outside", fs::read_to_string(none.join("f.txt")))?;
        expect_denied("list outside", fs::read_dir(&none))?;
        expect_denied(
            "write to /tmp",
            fs::write(Path::new("/tmp/warden-confine-ll"), "x"),
        )?;
        expect_denied("read /etc/hostname", fs::read("/etc/hostname"))?;
        expect_denied(
            "rename ro -> rw",
            fs::rename(ro.join("f.txt"), rw.join("stolen")),
        )?;
        Ok(format!("{status:?}"))
    })
    .expect_ok();
    eprintln!(
        "landlock status: {msg}, kernel ABI {:?}",
        landlock_abi_version()
    );
    if landlock_abi_version().is_some_and(|v| v >= 6) {
        assert_eq!(msg, format!("{:?}", LandlockStatus::FullyEnforced));
    }
}

#[test]
fn single_file_rule() {
    let t = tree();
    let file = t.ro.join("f.txt");
    let other = t.ro.join("other.txt");
    fs::write(&other, "o").unwrap();
    run_in_child(move || {
        let p = LandlockPaths {
            read_exec: vec![file.clone()],
            read_write: vec![],
        };
        apply_landlock(&p).map_err(|e| format!("{e:?}"))?;
        ok("read allowed file", fs::read(&file))?;
        expect_denied("read sibling", fs::read(&other))?;
        Ok(String::new())
    })
    .expect_ok();
}

#[test]
fn scopes_signals_and_abstract_sockets() {
    if landlock_abi_version().is_none_or(|v| v < 6) {
        eprintln!("skipping: Landlock ABI < 6 has no scoping");
        return;
    }
    let name = format!("warden-confine-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = UnixListener::bind_addr(&addr).unwrap();
    run_in_child(move || {
        // SAFETY: signal 0 only checks permission.
        let ppid = unsafe { libc::getppid() };
        if unsafe { libc::kill(ppid, 0) } != 0 {
            return Err("control: kill(parent, 0) failed before landlock".into());
        }
        ok(
            "control: connect before landlock",
            UnixStream::connect_addr(&addr),
        )?;
        apply_landlock(&LandlockPaths::default()).map_err(|e| format!("{e:?}"))?;
        // SAFETY: as above.
        if unsafe { libc::kill(ppid, 0) } == 0 || common::errno() != libc::EPERM {
            return Err("kill(parent, 0) not denied with EPERM".into());
        }
        match UnixStream::connect_addr(&addr) {
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
            other => return Err(format!("abstract connect not denied: {other:?}")),
        }
        // Inside the domain both still work: signal ourselves, connect to our own socket.
        // SAFETY: as above.
        if unsafe { libc::kill(libc::getpid(), 0) } != 0 {
            return Err("kill(self, 0) denied".into());
        }
        let own =
            SocketAddr::from_abstract_name(b"warden-confine-own").map_err(|e| e.to_string())?;
        let _l = ok("bind own abstract socket", UnixListener::bind_addr(&own))?;
        ok(
            "connect own abstract socket",
            UnixStream::connect_addr(&own),
        )?;
        Ok(String::new())
    })
    .expect_ok();
}

//! Capabilities, no_new_privs, rlimits and the whole sequence, in forked children.

mod common;

use std::io::Write;

use common::{proc_status_field, run_in_child};
use warden_confine::*;

const CAP_FIELDS: [&str; 5] = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

fn all_caps_zero() -> Result<String, String> {
    let mut report = String::new();
    for f in CAP_FIELDS {
        let v = proc_status_field(f)?;
        if u64::from_str_radix(&v, 16).map_err(|e| e.to_string())? != 0 {
            return Err(format!("{f} = {v}"));
        }
        report += &format!("{f}={v} ");
    }
    Ok(report)
}

#[test]
fn drop_all_capabilities_empties_every_set() {
    let before = proc_status_field("CapBnd").unwrap();
    assert_ne!(
        u64::from_str_radix(&before, 16).unwrap(),
        0,
        "test needs a privileged parent"
    );
    let msg = run_in_child(|| {
        drop_all_capabilities().map_err(|e| format!("{e:?}"))?;
        all_caps_zero()
    })
    .expect_ok();
    eprintln!("after drop_all_capabilities: {msg}");
}

#[test]
fn drop_bounding_then_setuid_then_drop_all() {
    run_in_child(|| {
        drop_bounding_and_ambient().map_err(|e| format!("{e:?}"))?;
        if u64::from_str_radix(&proc_status_field("CapBnd")?, 16).unwrap_or(1) != 0 {
            return Err("bounding not empty".into());
        }
        if u64::from_str_radix(&proc_status_field("CapEff")?, 16).unwrap_or(0) == 0 {
            return Err("effective should still be set before the uid change".into());
        }
        // SAFETY: plain credential syscalls in the child.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err(format!("setres*id: {}", std::io::Error::last_os_error()));
            }
        }
        // No CAP_SETPCAP any more, but the bounding set is already empty.
        drop_all_capabilities().map_err(|e| format!("{e:?}"))?;
        all_caps_zero()
    })
    .expect_ok();
}

#[test]
fn drop_all_after_losing_setpcap_is_an_error() {
    let msg = run_in_child(|| {
        // SAFETY: plain credential syscalls in the child.
        unsafe {
            if libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err("setres*id".into());
            }
        }
        match drop_all_capabilities() {
            Err(e @ ConfineError::CapBoundingDrop { .. }) => Ok(e.to_string()),
            other => Err(format!("expected CapBoundingDrop, got {other:?}")),
        }
    })
    .expect_ok();
    eprintln!("{msg}");
}

#[test]
fn no_new_privs_is_set() {
    run_in_child(|| {
        set_no_new_privs().map_err(|e| format!("{e:?}"))?;
        match proc_status_field("NoNewPrivs")?.as_str() {
            "1" => Ok(String::new()),
            v => Err(format!("NoNewPrivs = {v}")),
        }
    })
    .expect_ok();
}

#[test]
fn fsize_limit_gives_efbig() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    run_in_child(move || {
        // SAFETY: ignoring SIGXFSZ so the write fails with EFBIG instead of killing us.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        let limits = Rlimits {
            nofile: 64,
            fsize_bytes: Some(4096),
            ..Rlimits::default()
        };
        apply_rlimits(&limits).map_err(|e| format!("{e:?}"))?;
        let mut f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        f.write_all(&[0u8; 4096])
            .map_err(|e| format!("write within limit: {e}"))?;
        match f.write(&[0u8; 1]) {
            Err(e) if e.raw_os_error() == Some(libc::EFBIG) => {}
            other => return Err(format!("write past limit: {other:?}")),
        }
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reading into a valid struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        if (r.rlim_cur, r.rlim_max) != (64, 64) {
            return Err(format!("nofile = {}/{}", r.rlim_cur, r.rlim_max));
        }
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut r) };
        if (r.rlim_cur, r.rlim_max) != (0, 0) {
            return Err("core not 0".into());
        }
        Ok(String::new())
    })
    .expect_ok();
}

#[test]
fn rlimit_error_names_the_resource() {
    let msg = run_in_child(|| {
        let huge = Rlimits {
            nofile: u64::MAX - 1,
            ..Rlimits::default()
        };
        match apply_rlimits(&huge) {
            Err(
                e @ ConfineError::Rlimit {
                    resource: "RLIMIT_NOFILE",
                    ..
                },
            ) => Ok(e.to_string()),
            other => Err(format!("{other:?}")),
        }
    })
    .expect_ok();
    assert!(msg.contains("RLIMIT_NOFILE"), "{msg}");
}

/// The documented order, then exec a shell: everything is inherited.
#[test]
fn full_sequence_then_exec() {
    let filter = load_seccomp_filter().unwrap();
    let bytes = filter.to_bytes(); // as if compiled on the host
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let msg = run_in_child(move || {
        let e = |e: ConfineError| format!("{e:?}");
        apply_rlimits(&Rlimits::default()).map_err(e)?;
        drop_bounding_and_ambient().map_err(e)?;
        // SAFETY: plain credential syscalls in the child.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err("setres*id".into());
            }
        }
        drop_all_capabilities().map_err(e)?;
        set_no_new_privs().map_err(e)?;
        let ro = ["/bin", "/usr", "/lib", "/lib64", "/etc", "/proc"]
            .map(Into::into)
            .to_vec();
        let status = apply_landlock(&LandlockPaths {
            read_exec: ro,
            read_write: vec![work.clone(), "/dev/null".into()],
        })
        .map_err(e)?;
        let f = CompiledFilter::from_bytes(&bytes).map_err(e)?;
        apply_seccomp(&f).map_err(e)?;
        let script = format!(
            "echo hi > {w}/out && cat {w}/out >/dev/null || exit 9; \
             echo x > /tmp/nope 2>/dev/null && exit 10; \
             unshare -U true 2>/dev/null && exit 11; \
             grep -q 'Seccomp:.*2' /proc/self/status || exit 12; \
             grep -q 'CapEff:.*0000000000000000' /proc/self/status || exit 13; \
             exit 3",
            w = work.display()
        );
        let st = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .status();
        match st.map(|s| s.code()) {
            Ok(Some(3)) => Ok(format!("landlock {status:?}")),
            other => Err(format!("shell: {other:?}")),
        }
    })
    .expect_ok();
    eprintln!("{msg}");
}

//! The seccomp policy installed for real, each probe in a forked child; every
//! denial has a control run of the same call without the filter.

mod common;

use common::{errno, install_policy, run_in_child, sys};

type Res = Result<i64, i32>;

/// Runs `call` in a child, with or without the policy, and returns its result.
fn probe(filtered: bool, call: fn() -> Res) -> Res {
    let msg = run_in_child(move || {
        if filtered {
            install_policy()?;
        }
        Ok(match call() {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("err {e}"),
        })
    })
    .expect_ok();
    let (kind, n) = msg.split_once(' ').expect("child message");
    match kind {
        "ok" => Ok(n.parse().expect("value")),
        _ => Err(n.parse().expect("errno")),
    }
}

/// Filtered run must fail with `want`; the control must not fail with `want`.
#[track_caller]
fn denied_with(call: fn() -> Res, want: i32) {
    let with = probe(true, call);
    let without = probe(false, call);
    eprintln!("with filter: {with:?}, control: {without:?}");
    assert_eq!(with, Err(want), "with filter");
    assert_ne!(
        without,
        Err(want),
        "control (no filter) already fails the same way"
    );
}

#[track_caller]
fn allowed(call: fn() -> Res, check: fn(i64) -> bool) {
    for filtered in [true, false] {
        let r = probe(filtered, call);
        assert!(matches!(r, Ok(v) if check(v)), "filtered={filtered}: {r:?}");
    }
}

fn raw(nr: i64, a: [u64; 3]) -> Res {
    // SAFETY: probes with harmless or invalid arguments; pointers are null or valid.
    sys(unsafe { libc::syscall(nr, a[0], a[1], a[2]) })
}

#[test]
fn unshare_newuser_denied() {
    denied_with(
        || raw(libc::SYS_unshare, [libc::CLONE_NEWUSER as u64, 0, 0]),
        libc::EPERM,
    );
}

#[test]
fn setns_denied() {
    // Control: EBADF.
    denied_with(|| raw(libc::SYS_setns, [u64::MAX, 0, 0]), libc::EPERM);
}

#[test]
fn mount_denied() {
    fn call() -> Res {
        let (src, dst, fs) = (c"none", c"/nonexistent-warden-confine", c"tmpfs");
        // SAFETY: valid C strings; the target does not exist (control gets ENOENT).
        sys(
            unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) }
                .into(),
        )
    }
    denied_with(call, libc::EPERM);
}

#[test]
fn clone3_enosys() {
    // Control: EINVAL (size 0).
    denied_with(|| raw(libc::SYS_clone3, [0, 0, 0]), libc::ENOSYS);
}

fn raw_clone(flags: u64) -> Res {
    // SAFETY: fork-like clone (no new stack); the child exits at once.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0u64,
            0u64,
            0u64,
            0u64,
        )
    };
    if pid == 0 {
        // SAFETY: in the clone child.
        unsafe { libc::_exit(5) };
    }
    let pid = sys(pid)?;
    let mut st = 0;
    // SAFETY: reaping our child.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
    Ok(libc::WEXITSTATUS(st).into())
}

#[test]
fn clone_with_namespace_flags_denied() {
    denied_with(|| raw_clone(libc::CLONE_NEWNS as u64), libc::EPERM);
    denied_with(|| raw_clone(libc::CLONE_NEWNET as u64), libc::EPERM);
    denied_with(|| raw_clone(libc::CLONE_NEWUSER as u64), libc::EPERM);
}

#[test]
fn plain_clone_and_fork_work() {
    allowed(|| raw_clone(0), |v| v == 5);
    allowed(
        || {
            // SAFETY: fork; the child exits at once.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: in the fork child.
                unsafe { libc::_exit(7) };
            }
            let pid = sys(pid.into())?;
            let mut st = 0;
            // SAFETY: reaping our child.
            unsafe { libc::waitpid(pid as i32, &mut st, 0) };
            Ok(libc::WEXITSTATUS(st).into())
        },
        |v| v == 7,
    );
}

#[test]
fn threads_and_spawn_work() {
    // glibc tries clone3 first, gets ENOSYS, falls back to clone.
    allowed(
        || std::thread::spawn(|| 42).join().map_err(|_| -1),
        |v| v == 42,
    );
    allowed(
        || match std::process::Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .status()
        {
            Ok(st) => Ok(st.code().unwrap_or(-1).into()),
            Err(e) => Err(e.raw_os_error().unwrap_or(-1)),
        },
        |v| v == 3,
    );
}

#[test]
fn ptrace_traceme_denied() {
    // SAFETY: TRACEME takes no pointers.
    denied_with(
        || sys(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) }),
        libc::EPERM,
    );
}

#[test]
fn bpf_denied() {
    // Control: EINVAL (unknown command).
    denied_with(|| raw(libc::SYS_bpf, [0xffff, 0, 0]), libc::EPERM);
}

#[test]
fn io_uring_setup_denied() {
    // Control: EFAULT (null params).
    denied_with(|| raw(libc::SYS_io_uring_setup, [1, 0, 0]), libc::EPERM);
}

fn socket(domain: i32, ty: i32, proto: i32) -> Res {
    // SAFETY: plain socket(2); the fd leaks into the short-lived child only.
    sys(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) }.into())
}

#[test]
fn socket_families_denied() {
    denied_with(|| socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0), libc::EPERM);
    denied_with(|| socket(libc::AF_PACKET, libc::SOCK_RAW, 0), libc::EPERM);
    denied_with(
        || socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_AUDIT),
        libc::EPERM,
    );
    denied_with(
        || {
            socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW,
                libc::NETLINK_KOBJECT_UEVENT,
            )
        },
        libc::EPERM,
    );
}

#[test]
fn netlink_route_and_inet_allowed() {
    allowed(
        || socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
        |fd| fd >= 0,
    );
    allowed(|| socket(libc::AF_INET, libc::SOCK_STREAM, 0), |fd| fd >= 0);
    allowed(|| socket(libc::AF_UNIX, libc::SOCK_STREAM, 0), |fd| fd >= 0);
}

/// Opens a pty pair and issues `request` on the slave with a one-byte argument.
fn pty_ioctl(request: u64) -> Res {
    // SAFETY: standard pty setup; fds leak into the short-lived child only.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if master < 0 || libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            return Err(-errno());
        }
        let mut name = [0 as libc::c_char; 64];
        if libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0 {
            return Err(-errno());
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(-errno());
        }
        let byte: libc::c_char = b'x' as libc::c_char;
        sys(libc::syscall(
            libc::SYS_ioctl,
            slave,
            request,
            &byte as *const libc::c_char,
        ))
    }
}

#[test]
fn tiocsti_denied_including_high_bits() {
    // Control: as root TIOCSTI succeeds on the pty, and so does 0x1_0000_5412
    // because the kernel truncates the request to unsigned int (CVE-2019-10063).
    assert_eq!(probe(false, || pty_ioctl(0x5412)), Ok(0));
    assert_eq!(probe(false, || pty_ioctl(0x1_0000_5412)), Ok(0));
    assert_eq!(probe(true, || pty_ioctl(0x5412)), Err(libc::EPERM));
    assert_eq!(probe(true, || pty_ioctl(0x1_0000_5412)), Err(libc::EPERM));
    assert_eq!(
        probe(true, || pty_ioctl(0xffff_ffff_0000_5412)),
        Err(libc::EPERM)
    );
    // TIOCLINUX: control ENOTTY/EINVAL (a pty is not a VT).
    denied_with(|| pty_ioctl(0x541C), libc::EPERM);
}

#[test]
fn ordinary_ioctl_allowed() {
    fn fionread() -> Res {
        let mut p = [0; 2];
        // SAFETY: pipe + write + FIONREAD into a valid int.
        unsafe {
            if libc::pipe(p.as_mut_ptr()) != 0 {
                return Err(errno());
            }
            libc::write(p[1], b"abc".as_ptr().cast(), 3);
            let mut n: libc::c_int = 0;
            sys(libc::ioctl(p[0], libc::FIONREAD, &mut n).into())?;
            Ok(n.into())
        }
    }
    allowed(fionread, |n| n == 3);
}

#[test]
fn personality_only_harmless_values() {
    // SAFETY: personality(2) only changes the short-lived child.
    allowed(
        || sys(unsafe { libc::personality(0xffff_ffff) }.into()),
        |_| true,
    );
    allowed(|| sys(unsafe { libc::personality(0) }.into()), |_| true);
    denied_with(
        || sys(unsafe { libc::personality(libc::ADDR_NO_RANDOMIZE as _) }.into()),
        libc::EPERM,
    );
    denied_with(
        || {
            sys(unsafe {
                libc::personality(6 /* PER_BSD */)
            }
            .into())
        },
        libc::EPERM,
    );
}

#[test]
fn x32_syscall_kills_process() {
    // x32 getpid. Control: ENOSYS on this kernel (no CONFIG_X86_X32_ABI) or a pid.
    let call = || raw(0x4000_0000 | libc::SYS_getpid, [0, 0, 0]);
    let with = run_in_child(move || {
        install_policy()?;
        Ok(format!("{:?}", call()))
    });
    assert_eq!(with, common::Outcome::Signaled(libc::SIGSYS));
    assert!(!matches!(probe(false, call), Err(libc::EPERM)));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscall_kills_process() {
    fn int80_getpid() -> Res {
        let ret: i32;
        // SAFETY: i386 getpid through int 0x80 takes no arguments.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("eax") 20i32 => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
        }
        Ok(ret.into())
    }
    let with = run_in_child(|| {
        install_policy()?;
        Ok(format!("{:?}", int80_getpid()))
    });
    assert_eq!(
        with,
        common::Outcome::Signaled(libc::SIGSYS),
        "arch mismatch must kill"
    );
    // Control: a pid (IA32 emulation on) or SIGSEGV (off); either way not killed by seccomp.
    let without = run_in_child(|| Ok(format!("{:?}", int80_getpid())));
    assert_ne!(without, common::Outcome::Signaled(libc::SIGSYS));
}

//! Policy-as-data checks: JSON contents, compiled BPF (run through a small
//! classic-BPF interpreter, nothing installed), serialization.

use serde_json::Value;
use warden_confine::{load_seccomp_filter_for, policy_json, CompiledFilter, PolicyArch};

const REQUIRED_EPERM: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "acct",
    "quotactl",
    "iopl",
    "ioperm",
    "syslog",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "lookup_dcookie",
    "nfsservctl",
    "unshare",
    "setns",
    "clone",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "personality",
    "socket",
    "socketpair",
    "ioctl",
];
const X86_ONLY: &[&str] = &["iopl", "ioperm", "uselib"];

fn parse(arch: PolicyArch) -> Value {
    serde_json::from_str(policy_json(arch)).expect("policy is valid JSON")
}

fn syscalls(policy: &Value, filter: &str) -> Vec<String> {
    policy[filter]["filter"]
        .as_array()
        .expect("filter array")
        .iter()
        .map(|r| r["syscall"].as_str().expect("syscall name").to_string())
        .collect()
}

#[test]
fn policies_compile_for_both_arches() {
    for arch in [PolicyArch::X86_64, PolicyArch::Aarch64] {
        let f = load_seccomp_filter_for(arch).expect("compiles");
        assert_eq!(
            f.programs().len(),
            2,
            "{arch:?}: EPERM filter + ENOSYS filter"
        );
        assert!(f.instruction_count() < 4096);
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(PolicyArch::native(), Some(PolicyArch::X86_64));
}

#[test]
fn policy_contents() {
    let p = parse(PolicyArch::X86_64);
    let eperm = syscalls(&p, "deny_eperm");
    for name in REQUIRED_EPERM {
        assert!(
            eperm.iter().any(|s| s == name),
            "{name} missing from deny_eperm"
        );
    }
    assert_eq!(syscalls(&p, "deny_enosys"), ["clone3"]);
    assert!(
        !eperm.iter().any(|s| s == "clone3"),
        "filters must be disjoint"
    );
    assert_eq!(p["deny_eperm"]["match_action"]["errno"], 1);
    assert_eq!(p["deny_enosys"]["match_action"]["errno"], 38);
    for f in ["deny_eperm", "deny_enosys"] {
        assert_eq!(p[f]["mismatch_action"], "allow");
    }
    // Every clone rule is a single masked_eq on arg0 with mask == value.
    let clone_rules: Vec<&Value> = p["deny_eperm"]["filter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["syscall"] == "clone")
        .collect();
    assert_eq!(clone_rules.len(), 8);
    for r in clone_rules {
        let c = &r["args"][0];
        assert_eq!(c["index"], 0);
        assert_eq!(c["type"], "dword");
        assert_eq!(c["op"]["masked_eq"], c["val"]);
    }
}

#[test]
fn aarch64_policy_is_x86_64_minus_x86_only_syscalls() {
    let mut x86 = parse(PolicyArch::X86_64);
    let rules = x86["deny_eperm"]["filter"].as_array_mut().unwrap();
    rules.retain(|r| !X86_ONLY.contains(&r["syscall"].as_str().unwrap()));
    assert_eq!(x86, parse(PolicyArch::Aarch64));
}

// ---- classic BPF interpreter for seccomp programs ----

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const fn ret_errno(e: i32) -> u32 {
    0x0005_0000 | e as u32
}
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

fn run(prog: &[seccompiler::sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let load = |off: u32| -> u32 {
        match off {
            0 => nr as u32,
            4 => arch,
            16..=63 => {
                // Little-endian: each u64 argument is (low word, high word).
                let word = (off - 16) / 4;
                (args[(word / 2) as usize] >> (32 * (word & 1))) as u32
            }
            _ => panic!("load at {off}"),
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let i = &prog[pc];
        let jump = |cond: bool| pc + 1 + usize::from(if cond { i.jt } else { i.jf });
        pc = match i.code {
            0x20 => {
                acc = load(i.k);
                pc + 1
            }
            0x54 => {
                acc &= i.k;
                pc + 1
            }
            0x05 => pc + 1 + i.k as usize,
            0x15 => jump(acc == i.k),
            0x25 => jump(acc > i.k),
            0x35 => jump(acc >= i.k),
            0x45 => jump(acc & i.k != 0),
            0x06 => return i.k,
            c => panic!("opcode {c:#x}"),
        };
    }
}

/// Like the kernel: every filter runs, the most restrictive action wins
/// (lowest signed action value; ties go to the most recently installed).
fn verdict(f: &CompiledFilter, nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let action = |r: u32| (r & 0xffff_0000) as i32;
    let mut best = RET_ALLOW;
    for prog in f.programs().iter().rev() {
        let r = run(prog, nr, arch, args);
        if action(r) < action(best) {
            best = r;
        }
    }
    best
}

#[cfg(target_arch = "x86_64")]
fn x86(nr: i64, args: [u64; 6]) -> u32 {
    let f = load_seccomp_filter_for(PolicyArch::X86_64).unwrap();
    verdict(&f, nr, AUDIT_ARCH_X86_64, args)
}

fn a(a0: u64, a1: u64, a2: u64) -> [u64; 6] {
    [a0, a1, a2, 0, 0, 0]
}

#[cfg(target_arch = "x86_64")]
#[test]
fn bpf_verdicts_x86_64() {
    let eperm = ret_errno(libc::EPERM);
    assert_eq!(x86(libc::SYS_getpid, a(0, 0, 0)), RET_ALLOW);
    assert_eq!(x86(libc::SYS_mount, a(0, 0, 0)), eperm);
    assert_eq!(x86(libc::SYS_clone3, a(0, 0, 0)), ret_errno(libc::ENOSYS));
    assert_eq!(x86(libc::SYS_unshare, a(0, 0, 0)), eperm);
    // clone: each namespace bit is denied, thread/fork flags are not.
    for bit in [
        0x80u64,
        0x2_0000,
        0x200_0000,
        0x400_0000,
        0x800_0000,
        0x1000_0000,
        0x2000_0000,
        0x4000_0000,
    ] {
        assert_eq!(
            x86(libc::SYS_clone, a(bit | 17, 0, 0)),
            eperm,
            "bit {bit:#x}"
        );
        assert_eq!(
            x86(libc::SYS_clone, a(bit | 0x3d0f00 | (1 << 40), 0, 0)),
            eperm
        );
    }
    assert_eq!(x86(libc::SYS_clone, a(17, 0, 0)), RET_ALLOW, "fork");
    assert_eq!(
        x86(libc::SYS_clone, a(0x3d0f00, 0, 0)),
        RET_ALLOW,
        "pthread_create"
    );
    assert_eq!(
        x86(libc::SYS_clone, a(0x4111, 0, 0)),
        RET_ALLOW,
        "vfork-style spawn"
    );
    // personality
    for ok in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            x86(libc::SYS_personality, a(ok, 0, 0)),
            RET_ALLOW,
            "{ok:#x}"
        );
    }
    for bad in [6u64, 0x40000, 0x0040_0008, 0x20001] {
        assert_eq!(x86(libc::SYS_personality, a(bad, 0, 0)), eperm, "{bad:#x}");
    }
    // sockets (int arguments: compared on the low 32 bits, like the kernel reads them)
    for sc in [libc::SYS_socket, libc::SYS_socketpair] {
        assert_eq!(x86(sc, a(40, 1, 0)), eperm);
        assert_eq!(x86(sc, a(0x1_0000_0028, 1, 0)), eperm);
        assert_eq!(x86(sc, a(17, 3, 0)), eperm);
        assert_eq!(x86(sc, a(16, 3, 9)), eperm);
        assert_eq!(x86(sc, a(16, 3, 15)), eperm);
        assert_eq!(x86(sc, a(16, 3, 0)), RET_ALLOW);
        assert_eq!(x86(sc, a(2, 1, 0)), RET_ALLOW);
        assert_eq!(x86(sc, a(1, 1, 0)), RET_ALLOW);
    }
    // ioctl: low 32 bits only
    for req in [
        0x5412u64,
        0x1_0000_5412,
        0xffff_ffff_0000_5412,
        0x541c,
        0x7_0000_541c,
    ] {
        assert_eq!(x86(libc::SYS_ioctl, a(0, req, 0)), eperm, "{req:#x}");
    }
    assert_eq!(x86(libc::SYS_ioctl, a(0, libc::FIONREAD, 0)), RET_ALLOW);
    assert_eq!(
        x86(libc::SYS_ioctl, a(0, 0x5413, 0)),
        RET_ALLOW,
        "TIOCGWINSZ"
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn bpf_arch_and_x32_guard() {
    let f = load_seccomp_filter_for(PolicyArch::X86_64).unwrap();
    assert_eq!(verdict(&f, 20, AUDIT_ARCH_I386, [0; 6]), RET_KILL_PROCESS);
    for nr in [
        0x4000_0000 | libc::SYS_mount,
        0x4000_0000 | libc::SYS_getpid,
        0x4000_0000 + 512,
    ] {
        assert_eq!(
            verdict(&f, nr, AUDIT_ARCH_X86_64, [0; 6]),
            RET_KILL_PROCESS,
            "{nr:#x}"
        );
    }
    // The aarch64 policy has no x32 guard and kills x86_64 callers.
    let arm = load_seccomp_filter_for(PolicyArch::Aarch64).unwrap();
    assert_eq!(
        verdict(&arm, 39, AUDIT_ARCH_X86_64, [0; 6]),
        RET_KILL_PROCESS
    );
    assert_eq!(
        verdict(&arm, 172 /* getpid */, 0xc000_00b7, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        verdict(&arm, 40 /* mount */, 0xc000_00b7, [0; 6]),
        ret_errno(libc::EPERM)
    );
}

#[test]
fn bytes_roundtrip_and_rejects_garbage() {
    let f = load_seccomp_filter_for(PolicyArch::X86_64).unwrap();
    let bytes = f.to_bytes();
    assert_eq!(CompiledFilter::from_bytes(&bytes).unwrap(), f);
    assert!(
        CompiledFilter::from_bytes(&bytes[..bytes.len() - 1]).is_err(),
        "truncated"
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(CompiledFilter::from_bytes(&longer).is_err(), "trailing");
    let mut bad = bytes.clone();
    bad[0] ^= 0xff;
    assert!(CompiledFilter::from_bytes(&bad).is_err(), "magic");
    assert!(CompiledFilter::from_bytes(&[]).is_err());
    let mut zero = bytes[..8].to_vec();
    zero.extend_from_slice(&0u32.to_le_bytes());
    assert!(CompiledFilter::from_bytes(&zero).is_err(), "no programs");
}

#[test]
fn bad_policy_is_a_typed_error() {
    let err = warden_confine::compile_seccomp_policy(
        r#"{"f": {"mismatch_action": "allow", "match_action": {"errno": 1}, "filter": [{"syscall": "no_such_call"}]}}"#,
        PolicyArch::X86_64,
    )
    .unwrap_err();
    assert!(
        matches!(err, warden_confine::ConfineError::SeccompCompile { .. }),
        "{err:?}"
    );
}

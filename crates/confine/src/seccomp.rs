//! The seccomp deny-list: compiled from `policy/<arch>.json`, installed last.

use seccompiler::{sock_filter, BpfProgram, TargetArch};

use crate::ConfineError;

const POLICY_X86_64: &str = include_str!("../policy/x86_64.json");
const POLICY_AARCH64: &str = include_str!("../policy/aarch64.json");

// Classic BPF opcodes (linux/bpf_common.h) and seccomp constants.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Kernel limit on one filter's length (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;
/// Sanity bound on the number of stacked filters in a serialized policy.
const MAX_PROGRAMS: usize = 16;
const BYTES_MAGIC: &[u8; 8] = b"WDNSECC1";

/// Architectures with a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyArch {
    X86_64,
    Aarch64,
}

impl PolicyArch {
    /// The architecture this crate was compiled for, if it has a policy.
    pub fn native() -> Option<Self> {
        if cfg!(target_arch = "x86_64") {
            Some(Self::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Self::Aarch64)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Aarch64 => "aarch64",
        }
    }

    fn target(self) -> TargetArch {
        match self {
            Self::X86_64 => TargetArch::x86_64,
            Self::Aarch64 => TargetArch::aarch64,
        }
    }
}

/// The policy source (seccompiler JSON) shipped for `arch`.
pub fn policy_json(arch: PolicyArch) -> &'static str {
    match arch {
        PolicyArch::X86_64 => POLICY_X86_64,
        PolicyArch::Aarch64 => POLICY_AARCH64,
    }
}

/// One or more BPF programs, installed in order (the JSON holds one filter per
/// errno: seccompiler gives every filter a single match action). The filters
/// deny disjoint syscalls, so their order does not change the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    programs: Vec<BpfProgram>,
}

impl CompiledFilter {
    /// The programs in installation order.
    pub fn programs(&self) -> &[BpfProgram] {
        &self.programs
    }

    /// Total BPF instructions (for logging).
    pub fn instruction_count(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// Serializes the compiled programs so a host can compile once and hand the
    /// bytes to each sandbox: magic, u32 program count, then per program a u32
    /// instruction count and 8-byte instructions (all little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + 4 * self.programs.len() + 8 * self.instruction_count());
        out.extend_from_slice(BYTES_MAGIC);
        out.extend_from_slice(&(self.programs.len() as u32).to_le_bytes());
        for prog in &self.programs {
            out.extend_from_slice(&(prog.len() as u32).to_le_bytes());
            for insn in prog {
                out.extend_from_slice(&insn.code.to_le_bytes());
                out.push(insn.jt);
                out.push(insn.jf);
                out.extend_from_slice(&insn.k.to_le_bytes());
            }
        }
        out
    }

    /// Inverse of [`to_bytes`](Self::to_bytes). Checks the framing only; the
    /// kernel validates the BPF itself when the filter is installed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfineError> {
        let mut r = Reader(bytes);
        if r.take(BYTES_MAGIC.len())? != BYTES_MAGIC {
            return Err(ConfineError::FilterBytes("bad magic"));
        }
        let count = r.u32()? as usize;
        if count == 0 || count > MAX_PROGRAMS {
            return Err(ConfineError::FilterBytes("program count out of range"));
        }
        let mut programs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.u32()? as usize;
            if len == 0 || len > MAX_INSNS {
                return Err(ConfineError::FilterBytes("program length out of range"));
            }
            let mut prog = Vec::with_capacity(len);
            for chunk in r.take(len * 8)?.chunks_exact(8) {
                prog.push(sock_filter {
                    code: u16::from_le_bytes([chunk[0], chunk[1]]),
                    jt: chunk[2],
                    jf: chunk[3],
                    k: u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
                });
            }
            programs.push(prog);
        }
        if !r.0.is_empty() {
            return Err(ConfineError::FilterBytes("trailing bytes"));
        }
        Ok(Self { programs })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConfineError> {
        if self.0.len() < n {
            return Err(ConfineError::FilterBytes("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, ConfineError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Compiles the shipped policy for the running architecture.
pub fn load_seccomp_filter() -> Result<CompiledFilter, ConfineError> {
    let arch = PolicyArch::native().ok_or(ConfineError::UnsupportedArch(std::env::consts::ARCH))?;
    load_seccomp_filter_for(arch)
}

/// Compiles the shipped policy for `arch` (cross-compiling is fine: nothing is installed).
pub fn load_seccomp_filter_for(arch: PolicyArch) -> Result<CompiledFilter, ConfineError> {
    compile_seccomp_policy(policy_json(arch), arch)
}

/// Compiles a policy in seccompiler's JSON format. Filters are ordered by name.
///
/// On x86_64 a guard is spliced in after seccompiler's architecture check:
/// syscall numbers with the x32 bit (>= 0x4000_0000) kill the process. x32
/// syscalls carry `AUDIT_ARCH_X86_64` too, so without the guard a deny-list
/// could be bypassed with `0x4000_0000 | __NR_mount` on kernels with x32 enabled.
pub fn compile_seccomp_policy(
    json: &str,
    arch: PolicyArch,
) -> Result<CompiledFilter, ConfineError> {
    let map = seccompiler::compile_from_json(json.as_bytes(), arch.target()).map_err(|source| {
        ConfineError::SeccompCompile {
            arch: arch.name(),
            source,
        }
    })?;
    let mut named: Vec<(String, BpfProgram)> = map.into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if named.is_empty() || named.len() > MAX_PROGRAMS {
        return Err(policy_err(
            arch,
            format!("{} filters (want 1..={MAX_PROGRAMS})", named.len()),
        ));
    }
    let mut programs = Vec::with_capacity(named.len());
    for (name, mut prog) in named {
        if arch == PolicyArch::X86_64 {
            insert_x32_guard(&mut prog)
                .map_err(|d| policy_err(arch, format!("filter {name}: {d}")))?;
        }
        if prog.len() > MAX_INSNS {
            return Err(policy_err(
                arch,
                format!("filter {name} has {} instructions", prog.len()),
            ));
        }
        programs.push(prog);
    }
    Ok(CompiledFilter { programs })
}

fn policy_err(arch: PolicyArch, detail: String) -> ConfineError {
    ConfineError::SeccompPolicy {
        arch: arch.name(),
        detail,
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn insert_x32_guard(prog: &mut BpfProgram) -> Result<(), &'static str> {
    let kill = libc::SECCOMP_RET_KILL_PROCESS;
    // seccompiler's prologue: load arch; if x86_64 skip one; else kill.
    let expected = [
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_ARCH),
        sock_filter {
            code: BPF_JMP_JEQ_K,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH_X86_64,
        },
        stmt(BPF_RET_K, kill),
    ];
    if prog.len() < 4 || prog[..3] != expected {
        return Err("unexpected architecture-check prologue from seccompiler");
    }
    // The prologue's jump lands on index 3, where the guard now starts; every
    // later jump is relative and stays inside seccompiler's code.
    let guard = [
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR),
        sock_filter {
            code: BPF_JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        stmt(BPF_RET_K, kill),
    ];
    prog.splice(3..3, guard);
    Ok(())
}

/// Installs the filters on the calling thread (inherited by its children).
/// Sets `no_new_privs` first (seccompiler does). Single-threaded callers only;
/// see [`apply_seccomp_all_threads`] otherwise. On error some filters may
/// already be installed: treat any error as fatal for the sandbox.
pub fn apply_seccomp(f: &CompiledFilter) -> Result<(), ConfineError> {
    apply_with(f, seccompiler::apply_filter)
}

/// Like [`apply_seccomp`] but synchronises every thread of the process
/// (`SECCOMP_FILTER_FLAG_TSYNC`); fails if another thread cannot be synced.
pub fn apply_seccomp_all_threads(f: &CompiledFilter) -> Result<(), ConfineError> {
    apply_with(f, seccompiler::apply_filter_all_threads)
}

fn apply_with(
    f: &CompiledFilter,
    install: fn(&[sock_filter]) -> seccompiler::Result<()>,
) -> Result<(), ConfineError> {
    for (index, prog) in f.programs.iter().enumerate() {
        install(prog).map_err(|source| ConfineError::SeccompApply {
            index,
            insns: prog.len(),
            source,
        })?;
    }
    tracing::debug!(
        filters = f.programs.len(),
        insns = f.instruction_count(),
        "seccomp applied"
    );
    Ok(())
}

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while confining a process.
///
/// Every variant names the step and the value involved; OS errors are kept as
/// the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfineError {
    #[error("setrlimit({resource}, soft=hard={value}) failed")]
    Rlimit {
        resource: &'static str,
        value: u64,
        #[source]
        source: io::Error,
    },

    #[error("cannot drop capability {cap} from the bounding set (needs CAP_SETPCAP)")]
    CapBoundingDrop {
        cap: u32,
        #[source]
        source: io::Error,
    },

    #[error("cannot read capability {cap} of the bounding set")]
    CapBoundingRead {
        cap: u32,
        #[source]
        source: io::Error,
    },

    #[error("cannot clear the ambient capability set")]
    CapAmbientClear {
        #[source]
        source: io::Error,
    },

    #[error("capget/capset failed while clearing the {what} capability sets")]
    Capset {
        what: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("capability set {set} still not empty after dropping (mask {mask:#x})")]
    CapsRemain { set: &'static str, mask: u64 },

    #[error("prctl(PR_SET_NO_NEW_PRIVS) failed")]
    NoNewPrivs {
        #[source]
        source: io::Error,
    },

    #[error("landlock: cannot open allowed path {path:?}")]
    LandlockPath {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("landlock: {step} failed")]
    Landlock {
        step: &'static str,
        #[source]
        source: landlock::RulesetError,
    },

    #[error("no seccomp policy for architecture {0}")]
    UnsupportedArch(&'static str),

    #[error("seccomp policy for {arch} does not compile")]
    SeccompCompile {
        arch: &'static str,
        #[source]
        source: seccompiler::Error,
    },

    #[error("seccomp policy for {arch}: {detail}")]
    SeccompPolicy { arch: &'static str, detail: String },

    #[error("installing seccomp filter #{index} ({insns} instructions) failed")]
    SeccompApply {
        index: usize,
        insns: usize,
        #[source]
        source: seccompiler::Error,
    },

    #[error("invalid serialized seccomp filter: {0}")]
    FilterBytes(&'static str),
}

//! Error type. Every kernel-facing failure carries the path and the operation so
//! a failed sandbox start can be diagnosed from the log line alone.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What we were doing to a cgroup file or directory when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Mkdir,
    Rmdir,
    Read,
    Write,
    ReadDir,
    Stat,
    Kill,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Mkdir => "mkdir",
            Op::Rmdir => "rmdir",
            Op::Read => "read",
            Op::Write => "write",
            Op::ReadDir => "readdir",
            Op::Stat => "stat",
            Op::Kill => "kill",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("invalid cgroup limits: {0}")]
    InvalidLimits(&'static str),

    #[error("invalid pid {0}: must be > 0")]
    InvalidPid(i32),

    #[error("no usable cgroup hierarchy: {0}")]
    NoHierarchy(String),

    /// A limit was requested but the controller (or controller feature, e.g.
    /// `memory.swap`) is not available where we looked (`path`).
    #[error("cgroup controller {controller} unavailable (looked at {path})")]
    ControllerUnavailable {
        controller: &'static str,
        path: PathBuf,
    },

    #[error("cgroup {path} already exists")]
    AlreadyExists { path: PathBuf },

    #[error("cgroup {op} {path}: {source}")]
    Io {
        op: Op,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cgroup file {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },

    #[error(
        "cgroup {path}: {remaining} process(es) still present after killing for {waited_ms} ms"
    )]
    KillTimeout {
        path: PathBuf,
        remaining: usize,
        waited_ms: u64,
    },
}

impl CgroupError {
    pub(crate) fn io(op: Op, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The raw OS error for `Io` errors (e.g. `libc::EBUSY`), if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

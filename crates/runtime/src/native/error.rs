//! What can go wrong starting a native sandbox's init, on the host's side
//! (the zygote, the clone, the id maps and cgroup, handing over the set-up).

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("sandbox setup description too large ({0} bytes)")]
    SetupTooLarge(usize),
    #[error("invalid init path {0:?}")]
    InitPath(String),
    #[error("{path}: {source}")]
    HostPath {
        path: String,
        source: std::io::Error,
    },
    #[error("a sandbox takes at most {0} host paths (image, input, mounts)")]
    TooManyPaths(usize),
}

impl SpawnError {
    /// Maps an I/O error of the step `what`.
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> SpawnError {
        move |source| SpawnError::Sys { what, source }
    }
}

//! The messages exchanged between the host and the in-sandbox init.
//!
//! Every request carries an id chosen by the host; every response carries the id
//! of the request it answers. A request gets zero or more *intermediate*
//! responses (process output, file data) and exactly one *terminal* response
//! (see [`Response::is_terminal`]). Requests that only adjust a running stream
//! (`Credit`) get no response at all.

use serde::{Deserialize, Serialize};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `execve` of argv[0] (looked up on `PATH` when it has no `/`).
    Argv(Vec<String>),
    /// A line for `/bin/sh -c`.
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub command: Command,
    /// Working directory; defaults to the session's, then the sandbox's.
    pub cwd: Option<String>,
    /// Variables added to (or replacing) the inherited environment.
    pub env: Vec<(String, String)>,
    /// Keep a pipe open for `Stdin` requests; otherwise stdin is /dev/null.
    pub stdin: bool,
    /// Kill the command's whole process group after this long.
    pub timeout_ms: Option<u64>,
    /// Return after `Started`; output is kept for a later `Attach`.
    pub background: bool,
    /// Run in a named session: start from the cwd/env the session's previous
    /// shell command ended with, and (for shell commands) record where this one
    /// ends. Sessions are created on first use.
    pub session: Option<String>,
    /// Run on a terminal of this size: the command's stdin, stdout and
    /// stderr are one pseudo-terminal, its controlling terminal in a
    /// session of its own; its output arrives as `Stdout` only, and
    /// `Stdin` is what is typed (`stdin` is implied).
    pub pty: Option<PtySize>,
}

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtySize {
    pub cols: u16,
    pub rows: u16,
}

impl ExecRequest {
    pub fn argv<I: IntoIterator<Item = S>, S: Into<String>>(argv: I) -> Self {
        ExecRequest {
            command: Command::Argv(argv.into_iter().map(Into::into).collect()),
            cwd: None,
            env: Vec::new(),
            stdin: false,
            timeout_ms: None,
            background: false,
            session: None,
            pty: None,
        }
    }

    pub fn shell(line: impl Into<String>) -> Self {
        ExecRequest {
            command: Command::Shell(line.into()),
            ..ExecRequest::argv(Vec::<String>::new())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

/// `lstat` of one path, as seen inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub kind: FileKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// For symlinks, the raw target (never followed).
    pub link_target: Option<Vec<u8>>,
    /// For symlinks, where the link leads once every link on the way is
    /// followed inside the sandbox; None for a dangling one.
    pub resolved: Option<Resolved>,
    /// The file's metadata: its `user.e2b.*` extended attributes (see
    /// [`META_XATTR_PREFIX`]), the prefix taken off, sorted by key; within
    /// [`META_MAX_BYTES`].
    pub meta: Vec<(String, String)>,
}

/// Extended attributes under this prefix are a file's metadata, as E2B's
/// envd keeps it: what E2B code sets in the sandbox (`os.setxattr`) and
/// what an upload's `X-Metadata-*` headers set are the same thing.
pub const META_XATTR_PREFIX: &str = "user.e2b.";
/// Most bytes of metadata (keys and values) one file's stat carries;
/// attributes past it (or past [`META_MAX_PAIRS`]), and values that are not
/// UTF-8, are left out.
pub const META_MAX_BYTES: usize = 4096;
/// Most metadata pairs one file's stat carries.
pub const META_MAX_PAIRS: usize = 64;
/// Most bytes of metadata one directory listing carries in all, so it stays
/// well within a frame: entries past it are listed without their metadata.
pub const META_LIST_BYTES: usize = 1 << 20;

/// The end of a symlink's chain, as seen inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The canonical absolute path.
    pub path: Vec<u8>,
    pub kind: FileKind,
    pub mode: u32,
}

/// One directory entry. The name is raw bytes: it came from the sandbox and
/// may be anything but `/` and NUL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub stat: FileStat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code when the process exited normally.
    pub code: Option<i32>,
    /// Signal number when it was killed by one.
    pub signal: Option<i32>,
    /// True when the per-command timeout killed it.
    pub timed_out: bool,
}

impl ExitStatus {
    /// Shell convention: the code, or 128+signal.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 255,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub command: Command,
    pub background: bool,
    pub session: Option<String>,
    /// `None` while it runs.
    pub exit: Option<ExitStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    BadRequest,
    NotFound,
    PermissionDenied,
    AlreadyExists,
    NotADirectory,
    IsADirectory,
    DirectoryNotEmpty,
    NoSpace,
    TooLarge,
    Unsupported,
    Io,
    /// Nothing listens on the port a `Connect` named.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

/// What happened to an entry of a watched directory. The mapping from
/// inotify follows Go's fsnotify (what E2B's envd reports): `IN_CREATE` and
/// `IN_MOVED_TO` are `Create`, `IN_MODIFY` is `Write`, `IN_DELETE` is
/// `Remove`, `IN_MOVED_FROM` is `Rename`, `IN_ATTRIB` is `Chmod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsEventKind {
    Create,
    Write,
    Remove,
    Rename,
    Chmod,
}

/// One change seen by a `Watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsEvent {
    pub kind: FsEventKind,
    /// Path relative to the watched directory, `/`-separated (`b"sub/f"` in
    /// a recursive watch); empty for the watched directory itself. Raw
    /// bytes: names come from the sandbox.
    pub name: Vec<u8>,
}

impl FsEvent {
    /// What one event counts against its stream's credit window: its name
    /// plus a fixed allowance for the framing around it.
    pub fn cost(&self) -> usize {
        self.name.len() + 16
    }
}

/// One entry a `Changes` walk found changed: a regular file, directory or
/// symlink whose inode changed (created, written, renamed, chmod-ed) since
/// the walk's `since_ns`; or anything else, reported with `skipped` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The absolute path, raw bytes (names come from the sandbox).
    pub path: Vec<u8>,
    pub kind: FileKind,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    /// Its inode number and status-change time (ns since the epoch): what
    /// a later walk compares to tell an untouched file from a rewritten
    /// one (the sandbox cannot set a ctime back).
    pub ino: u64,
    pub ctime_ns: i64,
    /// A symlink's target, never followed.
    pub target: Vec<u8>,
    /// A changed directory's every name (what a restore keeps: anything
    /// else found there was deleted).
    pub names: Vec<Vec<u8>>,
    /// Why the entry cannot be taken (a FIFO, a socket, a device, a
    /// directory the sandbox user cannot read).
    pub skipped: Option<String>,
}

impl Change {
    /// What one entry counts against its stream's credit window.
    pub fn cost(&self) -> usize {
        self.path.len()
            + self.target.len()
            + self.names.iter().map(|n| n.len() + 2).sum::<usize>()
            + 48
    }
}

/// Host -> init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// -> `Started`, then (unless background) `Stdout`/`Stderr`..., `Exited`.
    Exec(ExecRequest),
    /// Stream a process's output from now on (with `replay`, first what it
    /// printed before, as far as the backlog holds) -> output..., `Exited`.
    Attach { pid: u32, replay: bool },
    /// -> `Exited` once the process has ended.
    Wait { pid: u32 },
    /// -> `Done` once the bytes were written to the process's stdin.
    Stdin {
        pid: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// -> `Done`.
    CloseStdin { pid: u32 },
    /// Signal the process's whole process group -> `Done`.
    Signal { pid: u32, signal: i32 },
    /// Resize the terminal of a process started with `pty` -> `Done` (its
    /// foreground processes get SIGWINCH).
    Resize { pid: u32, size: PtySize },
    /// -> `Processes`.
    ListProcesses,
    /// Lets a stream (`Exec`, `Attach`, `ReadFile`, `Watch` with this
    /// request id) send `bytes` more. No response.
    Credit { stream: u32, bytes: u32 },
    /// -> `Data`..., `Done`. With `strict`, the path may not contain any
    /// symlink and the file must have exactly one link (for exports, where
    /// the sandbox may be swapping things under the reader).
    ReadFile {
        path: String,
        offset: u64,
        limit: Option<u64>,
        strict: bool,
        /// With `strict`, accept a file with more than one link (a
        /// snapshot takes every path of a hard-linked file; an export
        /// refuses them).
        links_ok: bool,
    },
    /// Start an atomic write (temp file, renamed over `path` on commit)
    /// -> `Opened`.
    /// `meta` (keys without [`META_XATTR_PREFIX`]) is set on the new file,
    /// which has no other metadata (a write replaces the file's).
    WriteOpen {
        path: String,
        mode: u32,
        meta: Vec<(String, String)>,
    },
    /// -> `Done`.
    WriteChunk {
        handle: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// -> `Stat` of the file now at its path.
    WriteCommit { handle: u32 },
    /// -> `Done`; the temp file is removed.
    WriteAbort { handle: u32 },
    /// -> `Entries`.
    ListDir { path: String },
    /// `lstat` -> `Stat`.
    Stat { path: String },
    /// -> `Done`.
    Mkdir { path: String, parents: bool },
    /// -> `Done`.
    Remove { path: String, recursive: bool },
    /// -> `Done`.
    Rename { from: String, to: String },
    /// Watch a directory (with `recursive`, its whole tree, including
    /// directories that appear later) -> `Watching` once the watch is in
    /// place, then `FsEvents`... under flow control, and one terminal
    /// response: `Done` after a `Cancel`, or `Error` (it could not start,
    /// or it ended on its own: the directory was removed, the event queue
    /// overflowed, the tree outgrew the limits). The path may not contain
    /// a symlink.
    Watch { path: String, recursive: bool },
    /// End the stream of request `stream` (a `Watch` or a `Connect`) -> `Done`; the
    /// stream itself then ends with `Done`. An unknown id is not an error
    /// (the stream may just have ended).
    Cancel { stream: u32 },
    /// Open a TCP connection to `port` on the sandbox's own loopback (a
    /// server the sandbox runs, reached from the host without any network
    /// of the host's) -> `Connected`, then `Data`... (what the server sends,
    /// under flow control), and one terminal response: `Done` once the
    /// server has closed its side and everything it sent is out, or after a
    /// `Cancel`; `Error` (kind `Refused`) when nothing listens there.
    Connect { port: u16 },
    /// Bytes for the server at the other end of tunnel `stream` (a
    /// `Connect`'s request id) -> `Done` once they are written.
    Send {
        stream: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// No more bytes for tunnel `stream` (a half-close: the server sees the
    /// end of its input and may still answer) -> `Done`.
    CloseSend { stream: u32 },
    /// Everything under `roots` changed since `since_ns` (by ctime, which
    /// no process can set back), not descending into `skip` ->
    /// `Changes`... under flow control, then `Done`; `Error` once more
    /// than `max_entries` entries or `max_names` directory names would be
    /// reported. See [`Change`].
    Changes {
        roots: Vec<String>,
        skip: Vec<String>,
        since_ns: i64,
        max_entries: u64,
        max_names: u64,
    },
    /// Make a symlink at `path` leading to `target` -> `Done`.
    Symlink { target: Vec<u8>, path: String },
    /// Set a path's mode and modification time, never following a symlink
    /// (a symlink's mode is left as it is) -> `Done`.
    SetMeta {
        path: String,
        mode: Option<u32>,
        mtime_ns: Option<i64>,
    },
    /// Kill every process in the sandbox but the init, which goes on
    /// serving -> `Done` (a pause: files are taken from a sandbox whose
    /// programs can no longer change them).
    KillAll,
    /// -> `Done`.
    Ping,
    /// Kill every process in the sandbox -> `Done`; then the init exits.
    Shutdown,
    /// Before a checkpoint (a pause that keeps memory): the init writes
    /// everything queued, answers `Done` as its last frame, and writes
    /// nothing more until `Thaw`, so no frame is cut in two by the
    /// checkpoint. Processes go on; what they print waits.
    Freeze,
    /// After a restore (on the new channel) or a failed checkpoint: every
    /// stream of the host before the freeze is let go (its host half is
    /// gone), then `Thawed` and writing resumes.
    Thaw,
    /// Appends to an open write (`WriteOpen`) the whole content of the file
    /// whose descriptor comes with this frame (`SCM_RIGHTS`, on a channel
    /// that passes them: see [`crate::Client::passes_files`]) -> `Done`.
    /// The kernel copies the bytes (`sendfile`), so a large file costs no
    /// frames. A frame that came without a file ends the write
    /// (`Unsupported`: the host sends bytes instead). Appended after every
    /// earlier request, so each keeps its encoding.
    WriteFromFile { handle: u32 },
    /// Copies a regular file (opened as `ReadFile` opens it), at most
    /// `limit` bytes of it, into the pipe whose writing end comes with
    /// this frame (`SCM_RIGHTS`), closes the pipe -> `Copied` with the
    /// bytes copied. The kernel moves the bytes (`sendfile`), so a large
    /// file costs no frames: a snapshot's files, at a pause. A frame that
    /// came without its pipe is refused (`Unsupported`). Appended last.
    ReadToFile {
        path: String,
        limit: u64,
        strict: bool,
        links_ok: bool,
    },
    /// Runs the path operations one after another, each once the one
    /// before has ended, in one round trip -> `Batch` with each one's
    /// answer, in order (an operation's failure does not stop the next).
    /// At most [`crate::MAX_BATCH_OPS`]. Appended last.
    Batch(Vec<crate::BatchOp>),
}

/// Init -> host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Started {
        pid: u32,
    },
    Stdout(#[serde(with = "serde_bytes")] Vec<u8>),
    Stderr(#[serde(with = "serde_bytes")] Vec<u8>),
    Exited(ExitStatus),
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    Opened {
        handle: u32,
    },
    Stat(FileStat),
    Entries(Vec<DirEntry>),
    Processes(Vec<ProcessInfo>),
    /// A `Watch` is in place: changes from now on are reported.
    Watching,
    /// A `Connect` reached its server: `Send` may follow.
    Connected,
    /// Changes in a watched directory, oldest first.
    FsEvents(Vec<FsEvent>),
    /// Entries found by a `Changes` walk, parents before their contents.
    Changes(Vec<Change>),
    Done,
    Error(ErrorReply),
    /// The answer to `Thaw`: request ids from `next_id` on are unused (the
    /// streams before the freeze may still be winding down under theirs).
    Thawed {
        next_id: u32,
    },
    /// The answer to `ReadToFile`: the bytes it put into the pipe (closed
    /// before this is sent). Appended last.
    Copied {
        bytes: u64,
    },
    /// The answers to a `Batch`'s operations, in order. Fewer than it had
    /// when the answers reached [`crate::BATCH_ANSWER_BYTES`]: the rest
    /// were not run (the host sends them again). Appended last.
    Batch(Vec<Response>),
}

impl Response {
    /// Whether this response ends its request.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            Response::Started { .. }
                | Response::Stdout(_)
                | Response::Stderr(_)
                | Response::Data(_)
                | Response::Watching
                | Response::Connected
                | Response::FsEvents(_)
                | Response::Changes(_)
        )
    }

    /// Bytes that count against a stream's credit window.
    pub fn payload_len(&self) -> usize {
        match self {
            Response::Stdout(d) | Response::Stderr(d) | Response::Data(d) => d.len(),
            Response::FsEvents(evs) => evs.iter().map(FsEvent::cost).sum(),
            Response::Changes(cs) => cs.iter().map(Change::cost).sum(),
            _ => 0,
        }
    }

    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response::Error(ErrorReply {
            kind,
            message: message.into(),
        })
    }
}

/// What every backend tells the init at start: the defaults each command
/// starts from. (The backend's own setup, e.g. mounts, happens before.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InitConfig {
    pub env: Vec<(String, String)>,
    pub workdir: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte payloads are encoded as one slice (`serde_bytes`), which
    /// postcard writes exactly as it wrote a sequence of `u8`s: an init of
    /// the same protocol version built before reads them unchanged.
    #[test]
    fn byte_payloads_keep_their_wire_form() {
        #[derive(Serialize)]
        enum AsSequence {
            #[allow(dead_code)]
            Started {
                pid: u32,
            },
            Stdout(Vec<u8>),
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let now = postcard::to_allocvec(&Response::Stdout(data.clone())).unwrap();
        let before = postcard::to_allocvec(&AsSequence::Stdout(data.clone())).unwrap();
        assert_eq!(now, before);
        let back: Response = postcard::from_bytes(&before).unwrap();
        assert_eq!(back, Response::Stdout(data));
    }
}

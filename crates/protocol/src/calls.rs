//! The init's requests as typed calls on a [`Client`]: run a command,
//! manage background processes, read and write files. Each is one request
//! (or one stream) over the client's channel.

use crate::client::{Client, ClientError, ExecOutput};
use crate::codec::CHUNK;
use crate::messages::*;

/// What a [`Client::changes`] walk covers.
#[derive(Debug, Clone, Copy)]
pub struct ChangesWalk<'a> {
    pub roots: &'a [String],
    pub skip: &'a [String],
    pub since_ns: i64,
    pub max_entries: u64,
    pub max_names: u64,
}

impl Client {
    pub(crate) async fn call_done(&self, req: Request) -> Result<(), ClientError> {
        match self.call(req).await? {
            Response::Done => Ok(()),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Runs a command to completion and collects its output.
    pub async fn exec_collect(&self, req: ExecRequest) -> Result<ExecOutput, ClientError> {
        let mut s = self.stream(Request::Exec(req))?;
        let mut out = ExecOutput {
            pid: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            status: ExitStatus {
                code: None,
                signal: None,
                timed_out: false,
            },
        };
        while let Some(r) = s.next().await? {
            match r {
                Response::Started { pid } => out.pid = pid,
                Response::Stdout(d) => out.stdout.extend_from_slice(&d),
                Response::Stderr(d) => out.stderr.extend_from_slice(&d),
                Response::Exited(st) => {
                    out.status = st;
                    return Ok(out);
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Err(ClientError::Disconnected)
    }

    /// Starts a background process and returns its pid.
    pub async fn spawn(&self, mut req: ExecRequest) -> Result<u32, ClientError> {
        req.background = true;
        let mut s = self.stream(Request::Exec(req))?;
        match s.next().await? {
            Some(Response::Started { pid }) => Ok(pid),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Disconnected),
        }
    }

    pub async fn wait(&self, pid: u32) -> Result<ExitStatus, ClientError> {
        match self.call(Request::Wait { pid }).await? {
            Response::Exited(st) => Ok(st),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    pub async fn stdin(&self, pid: u32, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(CHUNK) {
            self.call_done(Request::Stdin {
                pid,
                data: chunk.to_vec(),
            })
            .await?;
        }
        Ok(())
    }

    pub async fn close_stdin(&self, pid: u32) -> Result<(), ClientError> {
        self.call_done(Request::CloseStdin { pid }).await
    }

    pub async fn signal(&self, pid: u32, signal: i32) -> Result<(), ClientError> {
        self.call_done(Request::Signal { pid, signal }).await
    }

    /// Resizes the terminal of a process started with `pty`.
    pub async fn resize(&self, pid: u32, size: crate::PtySize) -> Result<(), ClientError> {
        self.call_done(Request::Resize { pid, size }).await
    }

    pub async fn list_processes(&self) -> Result<Vec<ProcessInfo>, ClientError> {
        match self.call(Request::ListProcesses).await? {
            Response::Processes(p) => Ok(p),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Reads a whole file (for small files; stream `ReadFile` for large ones).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let mut s = self.stream(Request::ReadFile {
            path: path.into(),
            offset: 0,
            limit: None,
            strict: false,
            links_ok: false,
        })?;
        let mut buf = Vec::new();
        while let Some(r) = s.next().await? {
            match r {
                Response::Data(d) => buf.extend_from_slice(&d),
                Response::Done => return Ok(buf),
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Err(ClientError::Disconnected)
    }

    /// Writes a file atomically (temp file + rename inside the sandbox).
    pub async fn write_file(
        &self,
        path: &str,
        mode: u32,
        data: &[u8],
    ) -> Result<FileStat, ClientError> {
        let mut w = self.write_open(path, mode, Vec::new()).await?;
        if let Err(e) = w.write(data).await {
            w.abort().await;
            return Err(e);
        }
        w.commit().await
    }

    pub async fn stat(&self, path: &str) -> Result<FileStat, ClientError> {
        match self.call(Request::Stat { path: path.into() }).await? {
            Response::Stat(st) => Ok(st),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    pub async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, ClientError> {
        match self.call(Request::ListDir { path: path.into() }).await? {
            Response::Entries(e) => Ok(e),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<(), ClientError> {
        self.call_done(Request::Mkdir {
            path: path.into(),
            parents,
        })
        .await
    }

    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), ClientError> {
        self.call_done(Request::Remove {
            path: path.into(),
            recursive,
        })
        .await
    }

    pub async fn rename(&self, from: &str, to: &str) -> Result<(), ClientError> {
        self.call_done(Request::Rename {
            from: from.into(),
            to: to.into(),
        })
        .await
    }

    /// Everything under `roots` changed since `since_ns` (see
    /// [`Request::Changes`]), collected: at most `max_entries` entries.
    pub async fn changes(&self, walk: ChangesWalk<'_>) -> Result<Vec<Change>, ClientError> {
        let mut s = self.stream(Request::Changes {
            roots: walk.roots.to_vec(),
            skip: walk.skip.to_vec(),
            since_ns: walk.since_ns,
            max_entries: walk.max_entries,
            max_names: walk.max_names,
        })?;
        let mut all = Vec::new();
        while let Some(r) = s.next().await? {
            match r {
                Response::Changes(batch) => all.extend(batch),
                Response::Done => return Ok(all),
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Err(ClientError::Disconnected)
    }

    pub async fn symlink(&self, target: &[u8], path: &str) -> Result<(), ClientError> {
        self.call_done(Request::Symlink {
            target: target.to_vec(),
            path: path.into(),
        })
        .await
    }

    /// Sets a path's mode and modification time (never through a symlink).
    pub async fn set_meta(
        &self,
        path: &str,
        mode: Option<u32>,
        mtime_ns: Option<i64>,
    ) -> Result<(), ClientError> {
        self.call_done(Request::SetMeta {
            path: path.into(),
            mode,
            mtime_ns,
        })
        .await
    }

    /// Kills every process but the init.
    pub async fn kill_all(&self) -> Result<(), ClientError> {
        self.call_done(Request::KillAll).await
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        self.call_done(Request::Ping).await
    }

    /// Asks the init to kill everything and exit.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        self.call_done(Request::Shutdown).await
    }
}

//! The protocol loop: read requests, run each as its own task, answer on the
//! shared writer.

use crate::conn::{Conn, Out};
use crate::{changes, files, process, tunnel, watch, State};
use std::rc::Rc;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use warden_protocol::{codec, FileReader, InitConfig, Request, Response};

/// Serves the control channel until the host says `Shutdown` or goes away;
/// either way every process in the sandbox is killed and the init exits.
pub async fn serve(mut stream: UnixStream, cfg: InitConfig) -> ! {
    // Registered before any child exists, so no SIGCHLD is missed.
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(s) => s,
        Err(_) => exit_now(),
    };
    if codec::handshake(&mut stream).await.is_err() {
        exit_now();
    }
    let (rd, wr) = stream.into_split();
    // Read with `recvmsg`, so files the host passes are kept for the
    // requests they came with (see `passed.rs`).
    let mut rd = FileReader::new(rd);
    let (tx, mut rx) = mpsc::channel::<Out>(64);
    let state = Rc::new(State {
        conn: Conn::new(tx),
        procs: Default::default(),
        files: Default::default(),
        sessions: Default::default(),
        watches: Default::default(),
        tunnels: Default::default(),
        cfg,
    });

    let st = state.clone();
    tokio::task::spawn_local(async move {
        let mut wr = wr;
        while let Some(out) = rx.recv().await {
            match out {
                Out::Frame(buf) => {
                    if wr.write_all(&buf).await.is_err() {
                        break;
                    }
                }
                Out::Exit => {
                    let _ = wr.flush().await;
                    break;
                }
                Out::Freeze(buf) => {
                    if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                    // Parked with no await after the write, so a `Thaw`
                    // (sent once the host has read this) always finds it.
                    *st.conn.parked.borrow_mut() = Some(wr);
                    st.conn.thawed.notified().await;
                    wr = match st.conn.parked.borrow_mut().take() {
                        Some(w) => w,
                        None => break,
                    };
                }
            }
        }
        st.procs.kill_all();
        exit_now();
    });

    let st = state.clone();
    tokio::task::spawn_local(async move {
        loop {
            st.procs.reap(&st);
            if sigchld.recv().await.is_none() {
                break;
            }
        }
    });

    // The highest request id seen: a host that takes over after a
    // restore numbers its requests above it.
    let mut max_id = 0u32;
    loop {
        if state.conn.frozen() {
            rd = match await_input(&state, rd.into_inner()).await {
                Some(r) => FileReader::new(r),
                None => break,
            };
        }
        let frame = match codec::read_frame::<_, Request>(&mut rd).await {
            Ok(Some(f)) => f,
            // The host went away or sent garbage: nobody can control this
            // sandbox any more, so it ends.
            Ok(None) | Err(_) => break,
        };
        max_id = max_id.max(frame.id);
        match frame.body {
            Request::Credit { stream, bytes } => state.conn.credit(stream, bytes),
            Request::Freeze => state.conn.freeze(frame.id).await,
            Request::Thaw => {
                // Whoever asked for the watches and tunnels is gone.
                state.watches.cancel_all();
                state.tunnels.cancel_all();
                state.conn.thaw();
                let next_id = max_id.saturating_add(1);
                state
                    .conn
                    .send(frame.id, Response::Thawed { next_id })
                    .await;
            }
            // Both touch the watch registry here, in order: a Cancel always
            // finds the Watch sent before it, and frees its slot at once.
            Request::Watch { path, recursive } => {
                watch::start(state.clone(), frame.id, path, recursive)
            }
            Request::Cancel { stream } => {
                state.watches.cancel(stream);
                state.tunnels.cancel(stream);
                tokio::task::spawn_local(handle(
                    state.clone(),
                    frame.id,
                    Request::Cancel { stream },
                ));
            }
            // The file came with this request's first bytes: claimed here,
            // in the order the requests came.
            Request::WriteFromFile { handle } => {
                let (st, id, file) = (state.clone(), frame.id, rd.take_file());
                tokio::task::spawn_local(async move {
                    let resp = crate::passed::write_from_file(&st, handle, file).await;
                    st.conn.send(id, resp).await;
                });
            }
            Request::ReadToFile {
                path,
                limit,
                strict,
                links_ok,
            } => {
                let (st, id, pipe) = (state.clone(), frame.id, rd.take_file());
                tokio::task::spawn_local(async move {
                    let how = (path, limit, strict, links_ok);
                    let resp = crate::passed::read_to_file(&st, how, pipe).await;
                    st.conn.send(id, resp).await;
                });
            }
            Request::Shutdown => {
                state.procs.kill_all();
                state.conn.send(frame.id, Response::Done).await;
                state.conn.exit().await;
                // The writer exits the process once the reply is out.
                std::future::pending::<()>().await;
            }
            req => {
                tokio::task::spawn_local(handle(state.clone(), frame.id, req));
            }
        }
    }
    state.procs.kill_all();
    exit_now()
}

/// While frozen (a checkpoint may be taken, and restored, at any moment):
/// waits until the host has written something, then registers the channel
/// with the event loop anew before it is read.
///
/// Why not simply await the read: after a gVisor restore (runsc 2022) the
/// channel is a new host descriptor under the old one's number. The old
/// registration is told of input at most once, and not at all when the
/// host's `Thaw` arrived before the restore had re-armed its notifications:
/// the init then never answered, now and then, and the resume failed after
/// its deadline. `poll(2)` asks the descriptor itself, so no input is
/// missed, and a fresh registration is told of what comes next. The 1 ms
/// tick runs only between a `Freeze` and its `Thaw`. Harmless when nothing
/// was restored (a failed checkpoint's `Thaw` comes the same way).
async fn await_input(
    state: &State,
    rd: tokio::net::unix::OwnedReadHalf,
) -> Option<tokio::net::unix::OwnedReadHalf> {
    use std::os::fd::AsRawFd;
    let fd = rd.as_ref().as_raw_fd();
    // The writer parks its half once it has written the answer to
    // `Freeze`; both halves are needed to register the channel again.
    while state.conn.parked.borrow().is_none() || !input_waiting(fd) {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let wr = state.conn.parked.borrow_mut().take()?;
    let (r, w) = rearm(rd, wr)?;
    *state.conn.parked.borrow_mut() = Some(w);
    Some(r)
}

/// Whether a read of `fd` would not block: input, end of input or an
/// error (the read that follows reports the last two).
fn input_waiting(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Registers the control channel with the event loop anew (see
/// [`await_input`]).
fn rearm(
    rd: tokio::net::unix::OwnedReadHalf,
    wr: tokio::net::unix::OwnedWriteHalf,
) -> Option<(
    tokio::net::unix::OwnedReadHalf,
    tokio::net::unix::OwnedWriteHalf,
)> {
    let std = rd.reunite(wr).ok()?.into_std().ok()?;
    Some(UnixStream::from_std(std).ok()?.into_split())
}

fn exit_now() -> ! {
    std::process::exit(0)
}

async fn handle(state: Rc<State>, id: u32, req: Request) {
    let resp = match req {
        Request::Exec(r) => return process::exec(state, id, r).await,
        Request::Attach { pid, replay } => return process::attach(state, id, pid, replay).await,
        Request::Wait { pid } => return process::wait(state, id, pid).await,
        Request::ReadFile {
            path,
            offset,
            limit,
            strict,
            links_ok,
        } => return files::read(state, id, path, offset, limit, strict, links_ok).await,
        Request::Changes {
            roots,
            skip,
            since_ns,
            max_entries,
            max_names,
        } => {
            let walk = changes::Walk {
                roots,
                skip,
                since_ns,
                max_entries,
                max_names,
            };
            return changes::run(state, id, walk).await;
        }
        Request::Symlink { target, path } => files::symlink(&state, target, &path).await,
        Request::SetMeta {
            path,
            mode,
            mtime_ns,
        } => files::set_meta(&state, &path, mode, mtime_ns).await,
        Request::Stdin { pid, data } => process::stdin(&state, pid, Some(data)).await,
        Request::CloseStdin { pid } => process::stdin(&state, pid, None).await,
        Request::Signal { pid, signal } => process::signal(&state, pid, signal),
        Request::Resize { pid, size } => process::resize(&state, pid, size),
        Request::ListProcesses => Response::Processes(state.procs.list()),
        Request::KillAll => {
            state.procs.kill_all();
            Response::Done
        }
        Request::WriteOpen { path, mode, meta } => {
            files::write_open(&state, &path, mode, meta).await
        }
        Request::WriteChunk { handle, data } => files::write_chunk(&state, handle, data).await,
        Request::WriteCommit { handle } => files::write_finish(&state, handle, true).await,
        Request::WriteAbort { handle } => files::write_finish(&state, handle, false).await,
        Request::ListDir { path } => files::list_dir(&state, &path).await,
        Request::Stat { path } => files::stat(&state, &path).await,
        Request::Mkdir { path, parents } => files::mkdir(&state, &path, parents).await,
        Request::Remove { path, recursive } => files::remove(&state, &path, recursive).await,
        Request::Rename { from, to } => files::rename(&state, &from, &to).await,
        Request::Batch(ops) => crate::batch::run(&state, ops).await,
        Request::Connect { port } => return tunnel::connect(state, id, port).await,
        Request::Send { stream, data } => tunnel::send(&state, stream, Some(data)).await,
        Request::CloseSend { stream } => tunnel::send(&state, stream, None).await,
        // (Credit, Shutdown, Watch, Freeze, Thaw, WriteFromFile, ReadToFile
        // and the effect of Cancel are handled by the request loop itself.)
        Request::Ping
        | Request::Cancel { .. }
        | Request::Credit { .. }
        | Request::Shutdown
        | Request::Freeze
        | Request::Thaw
        | Request::WriteFromFile { .. }
        | Request::ReadToFile { .. }
        | Request::Watch { .. } => Response::Done,
    };
    state.conn.send(id, resp).await;
}

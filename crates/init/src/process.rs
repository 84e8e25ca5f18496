//! Processes started in the sandbox: spawning, output pumps, exit, attach.
//!
//! The init is PID 1, so it reaps *every* child itself (`waitpid(-1)` on each
//! SIGCHLD) rather than through `std`'s per-child wait: orphans re-parented to
//! it must be reaped too, and a per-child wait would race the global one.

mod pump;

use crate::command::{build_command, decode_status};
use crate::conn::{io_error, write_or_close};
use crate::pty::Pty;
use crate::session::{self, Capture};
use crate::spawn::Stdio;
use crate::State;
use pump::{pump, pump_pty, Pump};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use warden_protocol::{Command, ErrorKind, ExecRequest, ExitStatus, ProcessInfo, Response};

/// Output kept per background process for a later `Attach { replay }`.
const BACKLOG_BYTES: usize = 1 << 20;
/// Finished background processes remembered for `ListProcesses`/`Wait`.
const KEEP_FINISHED: usize = 256;
/// After a process exits, what is already in its pipes is still read, but no
/// more than this: an orphan that keeps writing cannot hold the exit back.
const DRAIN_AFTER_EXIT: usize = 4 << 20;

/// Output for one subscriber. The subscription's channel closing means the
/// process finished; its status is then in `Proc::done`.
struct Event {
    stderr: bool,
    data: Vec<u8>,
}

#[derive(Default)]
struct Backlog {
    chunks: VecDeque<(bool, Vec<u8>)>,
    bytes: usize,
}

impl Backlog {
    fn push(&mut self, stderr: bool, data: &[u8]) {
        self.bytes += data.len();
        self.chunks.push_back((stderr, data.to_vec()));
        while self.bytes > BACKLOG_BYTES {
            match self.chunks.pop_front() {
                Some((_, d)) => self.bytes -= d.len(),
                None => break,
            }
        }
    }
}

pub struct Proc {
    pid: u32,
    command: Command,
    background: bool,
    session: Option<String>,
    stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    /// The init's end of the command's terminal, for one started with
    /// `pty`: its output, its input and its size.
    pty: Option<Rc<Pty>>,
    raw_exit: Cell<Option<ExitStatus>>,
    timed_out: Cell<bool>,
    exited: watch::Sender<bool>,
    done: watch::Sender<Option<ExitStatus>>,
    open_pumps: Cell<u8>,
    backlog: RefCell<Backlog>,
    subs: RefCell<Vec<mpsc::Sender<Event>>>,
    capture: RefCell<Option<Vec<u8>>>,
}

#[derive(Default)]
pub struct Procs {
    table: RefCell<HashMap<u32, Rc<Proc>>>,
    finished: RefCell<VecDeque<u32>>,
}

impl Procs {
    fn get(&self, pid: u32) -> Option<Rc<Proc>> {
        self.table.borrow().get(&pid).cloned()
    }

    /// Reaps every exited child; statuses of processes we did not start
    /// (orphans) are discarded.
    pub fn reap(&self, state: &Rc<State>) {
        loop {
            let mut status = 0;
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if let Some(p) = self.get(pid as u32) {
                p.raw_exit.set(Some(decode_status(status)));
                p.exited.send_replace(true);
                p.maybe_finish(state);
            }
        }
    }

    /// Kills every process in the sandbox. As PID 1 that is `kill(-1)`,
    /// which spares only the init; run outside a PID namespace (tests), only
    /// the process groups it started.
    pub fn kill_all(&self) {
        if std::process::id() == 1 {
            unsafe { libc::kill(-1, libc::SIGKILL) };
            return;
        }
        for p in self.table.borrow().values() {
            if p.raw_exit.get().is_none() {
                kill_group(p, libc::SIGKILL);
            }
        }
    }

    pub fn list(&self) -> Vec<ProcessInfo> {
        let mut v: Vec<ProcessInfo> = self
            .table
            .borrow()
            .values()
            .map(|p| ProcessInfo {
                pid: p.pid,
                command: p.command.clone(),
                background: p.background,
                session: p.session.clone(),
                exit: *p.done.borrow(),
            })
            .collect();
        v.sort_by_key(|p| p.pid);
        v
    }

    fn forget_finished(&self, p: &Proc) {
        if !p.background {
            self.table.borrow_mut().remove(&p.pid);
            return;
        }
        let mut fin = self.finished.borrow_mut();
        fin.push_back(p.pid);
        while fin.len() > KEEP_FINISHED {
            if let Some(old) = fin.pop_front() {
                self.table.borrow_mut().remove(&old);
            }
        }
    }
}

impl Proc {
    async fn emit(&self, stderr: bool, data: &[u8]) {
        if self.background {
            self.backlog.borrow_mut().push(stderr, data);
        }
        let subs: Vec<_> = self.subs.borrow().clone();
        for s in subs {
            let _ = s
                .send(Event {
                    stderr,
                    data: data.to_vec(),
                })
                .await;
        }
    }

    fn maybe_finish(&self, state: &Rc<State>) {
        let Some(mut st) = self.raw_exit.get() else {
            return;
        };
        if self.open_pumps.get() > 0 || self.done.borrow().is_some() {
            return;
        }
        st.timed_out = self.timed_out.get();
        if let (Some(name), Some(bytes)) = (&self.session, self.capture.borrow_mut().take()) {
            session::apply_capture(&state.sessions, name, &bytes);
        }
        // Publish the status first, then close every subscription: a
        // subscriber that sees its channel close finds the status set.
        self.done.send_replace(Some(st));
        self.subs.borrow_mut().clear();
        state.procs.forget_finished(self);
    }

    fn subscribe(&self, replay: bool) -> (mpsc::Receiver<Event>, Vec<(bool, Vec<u8>)>) {
        let (tx, rx) = mpsc::channel(8);
        let backlog = if replay {
            self.backlog.borrow().chunks.iter().cloned().collect()
        } else {
            Vec::new()
        };
        self.subs.borrow_mut().push(tx);
        (rx, backlog)
    }
}

/// Streams a subscription's events to the host under flow control.
async fn forward(
    state: Rc<State>,
    id: u32,
    p: Rc<Proc>,
    mut rx: mpsc::Receiver<Event>,
    backlog: Vec<(bool, Vec<u8>)>,
) {
    let credit = state.conn.open_stream(id);
    let mut backlog = backlog.into_iter();
    loop {
        let ev = match backlog.next() {
            Some((stderr, data)) => Event { stderr, data },
            None => match rx.recv().await {
                Some(ev) => ev,
                None => break,
            },
        };
        let body = if ev.stderr {
            Response::Stderr(ev.data)
        } else {
            Response::Stdout(ev.data)
        };
        state.conn.send_payload(id, &credit, body).await;
    }
    let st = *p.done.borrow();
    let body = match st {
        Some(st) => Response::Exited(st),
        None => Response::error(ErrorKind::Io, "process output ended without an exit status"),
    };
    state.conn.send(id, body).await;
    state.conn.close_stream(id);
}

/// Handles `Exec`: starts the process and, unless it runs in the background,
/// streams its output and exit to request `id`.
pub async fn exec(state: Rc<State>, id: u32, req: ExecRequest) {
    let (mut cmd, cwd) = match build_command(&state, &req) {
        Ok(c) => c,
        Err(e) => return state.conn.send(id, e).await,
    };
    let capture = if req.session.is_some() && matches!(req.command, Command::Shell(_)) {
        match Capture::new() {
            Ok(c) => Some(c),
            Err(e) => return state.conn.send(id, io_error("session pipe", &e)).await,
        }
    } else {
        None
    };
    let capture_fd = capture.as_ref().map(|c| c.child_fd());
    let (pty, stdio) = match req.pty.map(crate::pty::open) {
        Some(Ok((pty, slave))) => (Some(Rc::new(pty)), Stdio::Terminal(slave)),
        Some(Err(e)) => {
            return state
                .conn
                .send(id, io_error("cannot open a terminal", &e))
                .await
        }
        None => (None, Stdio::Pipes { stdin: req.stdin }),
    };
    if pty.is_some() && !cmd.has_env("TERM") {
        cmd.env("TERM", "xterm-256color");
    }
    // The terminal's far end (in `stdio`) is closed here once the command
    // has it: the near end reads end-of-file once every holder has closed it.
    let mut child = match cmd.start(&cwd, stdio, capture_fd) {
        Ok(c) => c,
        Err(e) => {
            return state
                .conn
                .send(id, io_error("cannot start command", &e))
                .await
        }
    };
    drop(cmd);
    let pid = child.pid;
    let stdin = child
        .stdin
        .take()
        .and_then(|s| pipe::Sender::from_owned_fd_unchecked(s).ok());
    let p = Rc::new(Proc {
        pid,
        command: req.command.clone(),
        background: req.background,
        session: req.session.clone(),
        stdin: tokio::sync::Mutex::new(stdin),
        pty: pty.clone(),
        raw_exit: Cell::new(None),
        timed_out: Cell::new(false),
        exited: watch::channel(false).0,
        done: watch::channel(None).0,
        open_pumps: Cell::new(0),
        backlog: RefCell::default(),
        subs: RefCell::default(),
        capture: RefCell::new(None),
    });
    state.procs.table.borrow_mut().insert(pid, p.clone());
    let sub = (!req.background).then(|| p.subscribe(false));
    let mut pumps: Vec<(OwnedFd, Pump)> = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push((out, Pump::Stdout));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push((err, Pump::Stderr));
    }
    if let Some(c) = capture {
        pumps.push((c.into_reader(), Pump::Capture));
    }
    p.open_pumps
        .set(pumps.len() as u8 + u8::from(pty.is_some()));
    for (fd, which) in pumps {
        tokio::task::spawn_local(pump(state.clone(), p.clone(), fd, which));
    }
    if let Some(pty) = pty {
        tokio::task::spawn_local(pump_pty(state.clone(), p.clone(), pty));
    }
    if let Some(ms) = req.timeout_ms {
        let p = p.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            // Until the command has finished (exited *and* its output is
            // closed), its group is killed, even if its first process has
            // already gone and left children behind.
            if p.done.borrow().is_none() {
                p.timed_out.set(true);
                kill_group(&p, libc::SIGKILL);
            }
        });
    }
    state.conn.send(id, Response::Started { pid }).await;
    match sub {
        Some((rx, backlog)) => forward(state, id, p, rx, backlog).await,
        None => state.conn.send(id, Response::Done).await,
    }
}

fn kill_group(p: &Proc, sig: i32) {
    // The command leads its own process group. Fall back to the process
    // itself (it may have moved to another group) only while it has not been
    // reaped: afterwards its pid may belong to someone else.
    let pid = p.pid as i32;
    if unsafe { libc::kill(-pid, sig) } != 0 && p.raw_exit.get().is_none() {
        unsafe { libc::kill(pid, sig) };
    }
}

fn not_found(pid: u32) -> Response {
    Response::error(ErrorKind::NotFound, format!("no process {pid}"))
}

pub async fn attach(state: Rc<State>, id: u32, pid: u32, replay: bool) {
    let Some(p) = state.procs.get(pid) else {
        return state.conn.send(id, not_found(pid)).await;
    };
    if p.done.borrow().is_some() {
        let backlog: Vec<_> = if replay {
            p.backlog.borrow().chunks.iter().cloned().collect()
        } else {
            Vec::new()
        };
        // A closed channel: forward sends the backlog, then the status.
        let (_, rx) = mpsc::channel(1);
        return forward(state, id, p, rx, backlog).await;
    }
    let (rx, backlog) = p.subscribe(replay);
    forward(state, id, p, rx, backlog).await
}

pub async fn wait(state: Rc<State>, id: u32, pid: u32) {
    let Some(p) = state.procs.get(pid) else {
        return state.conn.send(id, not_found(pid)).await;
    };
    let mut rx = p.done.subscribe();
    drop(p);
    let st = match rx.wait_for(|s| s.is_some()).await {
        Ok(s) => *s,
        Err(_) => None,
    };
    let body = match st {
        Some(st) => Response::Exited(st),
        None => Response::error(ErrorKind::Io, "process record vanished"),
    };
    state.conn.send(id, body).await;
}

pub async fn stdin(state: &State, pid: u32, data: Option<Vec<u8>>) -> Response {
    let Some(p) = state.procs.get(pid) else {
        return not_found(pid);
    };
    if let Some(pty) = &p.pty {
        // Typed input. A terminal's input is never closed: the command
        // reads end-of-file when Ctrl-D (0x04) is typed at a line's start.
        return match data {
            Some(d) => match pty.write_all(&d).await {
                Ok(()) => Response::Done,
                Err(e) => io_error("terminal input", &e),
            },
            None => Response::Done,
        };
    }
    let closed = || format!("process {pid} has no open stdin (start it with stdin: true)");
    write_or_close(&p.stdin, data, closed, "stdin").await
}

pub fn resize(state: &State, pid: u32, size: warden_protocol::PtySize) -> Response {
    match state.procs.get(pid) {
        Some(p) => match &p.pty {
            Some(pty) => match pty.resize(size) {
                Ok(()) => Response::Done,
                Err(e) => io_error("resize", &e),
            },
            None => Response::error(
                ErrorKind::BadRequest,
                format!("process {pid} has no terminal (start it with pty)"),
            ),
        },
        None => not_found(pid),
    }
}

pub fn signal(state: &State, pid: u32, sig: i32) -> Response {
    if !(1..=64).contains(&sig) {
        return Response::error(ErrorKind::BadRequest, format!("invalid signal {sig}"));
    }
    match state.procs.get(pid) {
        Some(p) if p.raw_exit.get().is_none() => {
            kill_group(&p, sig);
            Response::Done
        }
        Some(_) => Response::error(ErrorKind::NotFound, format!("process {pid} has exited")),
        None => not_found(pid),
    }
}

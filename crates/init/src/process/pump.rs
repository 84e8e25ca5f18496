//! A process's output pumps: each reads one source (a pipe, or the
//! command's terminal) and delivers what it reads to the process's
//! subscribers (or its session capture) until the source ends, or, once
//! the process has exited, until what is already there is drained.

use super::{Proc, DRAIN_AFTER_EXIT};
use crate::pty::Pty;
use crate::session;
use crate::State;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use warden_protocol::CHUNK;

/// Where a pump reads: a pipe, or a command's terminal.
enum Source {
    Pipe(pipe::Receiver),
    Pty(Rc<Pty>),
}

impl Source {
    async fn read_buf(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Source::Pipe(rx) => rx.read_buf(buf).await,
            Source::Pty(p) => p.read_buf(buf).await,
        }
    }

    fn read_now(&self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Source::Pipe(rx) => read_now(rx, buf),
            Source::Pty(p) => p.read_now(buf),
        }
    }
}

/// `fd` is the read end of a pipe, already non-blocking (`spawn.rs`,
/// `session::Capture`): tokio's checked constructor would ask the kernel
/// again, three more system calls per pipe (traps under gVisor).
pub(super) async fn pump(state: Rc<State>, p: Rc<Proc>, fd: OwnedFd, which: Pump) {
    if let Ok(rx) = pipe::Receiver::from_owned_fd_unchecked(fd) {
        pump_from(&p, Source::Pipe(rx), which).await;
    }
    p.open_pumps.set(p.open_pumps.get() - 1);
    p.maybe_finish(&state);
}

pub(super) async fn pump_pty(state: Rc<State>, p: Rc<Proc>, pty: Rc<Pty>) {
    pump_from(&p, Source::Pty(pty), Pump::Stdout).await;
    p.open_pumps.set(p.open_pumps.get() - 1);
    p.maybe_finish(&state);
}

async fn pump_from(p: &Rc<Proc>, mut rx: Source, which: Pump) {
    let mut exited = p.exited.subscribe();
    {
        // Filled through its spare capacity, never zeroed: a command that
        // prints little touches (and page-faults in) little of it.
        let mut buf = Vec::with_capacity(CHUNK);
        loop {
            buf.clear();
            tokio::select! {
                biased;
                r = rx.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => which.deliver(p, &buf[..n]).await,
                },
                _ = exited.wait_for(|e| *e) => {
                    let mut drained = 0;
                    while drained < DRAIN_AFTER_EXIT {
                        match rx.read_now(&mut buf) {
                            Ok(n) if n > 0 => {
                                drained += n;
                                which.deliver(p, &buf[..n]).await;
                            }
                            _ => break,
                        }
                    }
                    break;
                }
            }
        }
    }
}

/// Reads what the pipe holds right now with a plain `read(2)`.
///
/// Not tokio's `try_read_buf`: that consults the reactor's cached readiness
/// and answers `WouldBlock` *without* a syscall while the epoll event for
/// the data is still unprocessed. With several commands running, one
/// SIGCHLD's `waitpid(-1)` also reaps a command that wrote and exited after
/// the reactor last polled: its pump saw "exited" with its output still
/// unseen by the reactor, and the drain returned nothing (issue 15, item 1).
fn read_now(rx: &pipe::Receiver, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::os::fd::AsFd;
    buf.clear();
    Ok(rustix::io::read(
        rx.as_fd(),
        rustix::buffer::spare_capacity(buf),
    )?)
}

#[derive(Clone, Copy)]
pub(super) enum Pump {
    Stdout,
    Stderr,
    Capture,
}

impl Pump {
    async fn deliver(self, p: &Proc, data: &[u8]) {
        match self {
            Pump::Stdout => p.emit(false, data).await,
            Pump::Stderr => p.emit(true, data).await,
            Pump::Capture => {
                let mut c = p.capture.borrow_mut();
                let buf = c.get_or_insert_with(Vec::new);
                if buf.len() < session::MAX_CAPTURE {
                    buf.extend_from_slice(data);
                }
            }
        }
    }
}

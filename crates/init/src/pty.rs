//! Pseudo-terminals for commands that want one (`ExecRequest::pty`): the
//! command gets the terminal's far end as stdin, stdout and stderr and as
//! its controlling terminal in a session of its own; the init keeps the
//! near end, reads what the command prints from it (one stream: a
//! terminal has no separate stderr), writes input to it and resizes it.
//!
//! The pair comes from the sandbox's own devpts instance (`/dev/ptmx`,
//! capped per sandbox at its `max=`), so a sandbox cannot take another's
//! terminals.

use rustix::pty::{grantpt, ioctl_tiocgptpeer, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use tokio::io::unix::AsyncFd;
use warden_protocol::PtySize;

/// The init's end of one command's terminal.
pub struct Pty {
    master: AsyncFd<OwnedFd>,
}

/// A new terminal of `size`: the init's end and the command's end.
pub fn open(size: PtySize) -> io::Result<(Pty, OwnedFd)> {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let peer = OpenptFlags::RDWR | OpenptFlags::NOCTTY;
    // TIOCGPTPEER opens the far end without a path lookup; older kernels
    // (and gVisor) without it get it by name.
    let slave = match ioctl_tiocgptpeer(&master, peer) {
        Ok(fd) => fd,
        Err(_) => {
            let name = ptsname(&master, Vec::new())?;
            rustix::fs::open(
                name.as_c_str(),
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?
        }
    };
    set_cloexec(&master)?;
    set_cloexec(&slave)?;
    resize_fd(&master, size)?;
    let flags = rustix::fs::fcntl_getfl(&master)?;
    rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)?;
    // SAFETY: an OwnedFd always returns the descriptor it owns, which
    // stays open until the AsyncFd (its owner from here) drops it.
    let master = unsafe { AsyncFd::register(master) }.map_err(io::Error::from)?;
    Ok((Pty { master }, slave))
}

fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}

fn resize_fd(fd: impl AsFd, size: PtySize) -> io::Result<()> {
    tcsetwinsize(
        fd,
        Winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok(())
}

impl Pty {
    /// Sets the terminal's size; the kernel sends the command's foreground
    /// process group SIGWINCH.
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        resize_fd(self.master.get_ref(), size)
    }

    /// Reads what the command printed into `buf`'s spare capacity; 0 once
    /// every holder of the far end has closed it (the kernel answers EIO).
    pub async fn read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| read_into(fd.get_ref(), buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// What is there to read right now, without waiting.
    pub fn read_now(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        buf.clear();
        read_into(self.master.get_ref(), buf)
    }

    /// Writes all of `data` as typed input.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| Ok(rustix::io::write(fd.get_ref(), data)?)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

fn read_into(fd: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::IO) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

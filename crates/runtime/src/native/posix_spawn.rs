//! Starting a helper binary from the (large, multi-threaded) Warden process
//! with `posix_spawn`, which glibc implements with `CLONE_VM | CLONE_VFORK`:
//! the child shares the parent's memory until its `execve`, so nothing of
//! the parent's address space is copied. `std::process::Command` does the
//! same only when no `pre_exec` hook is set, and it cannot place fds at
//! given numbers; both are what the zygote needs.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in an argument"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Owns a `posix_spawn_file_actions_t` for as long as it is initialised.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        // SAFETY: zeroed storage initialised by the call before any use.
        let mut fa = FileActions(unsafe { std::mem::zeroed() });
        check(unsafe { libc::posix_spawn_file_actions_init(&mut fa.0) })?;
        Ok(fa)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// Runs `program` with `argv` (argv[0] included) and this process's
/// environment; `fds[i]` becomes the child's fd `3 + i` (without
/// close-on-exec, whatever the original's flag), and its stdin, stdout and
/// stderr are `/dev/null`. Returns the child's pid.
pub fn spawn(program: &Path, argv: &[&str], fds: &[BorrowedFd<'_>]) -> io::Result<libc::pid_t> {
    let path = cstring(program.as_os_str().as_bytes())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<io::Result<_>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv)
        })
        .collect::<io::Result<_>>()?;
    let mut argp: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argp.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());
    let null = cstring(OsStr::new("/dev/null").as_bytes())?;
    let mut fa = FileActions::new()?;
    // SAFETY: `fa` is initialised; the strings outlive the spawn call.
    unsafe {
        for (n, flags) in [
            (0, libc::O_RDONLY),
            (1, libc::O_WRONLY),
            (2, libc::O_WRONLY),
        ] {
            check(libc::posix_spawn_file_actions_addopen(
                &mut fa.0,
                n,
                null.as_ptr(),
                flags,
                0,
            ))?;
        }
        // A source may sit at another's target number: move them all
        // above every source and target first, then into place.
        let n = fds.len() as libc::c_int;
        let high = fds
            .iter()
            .map(|f| f.as_raw_fd())
            .fold(2 + n, libc::c_int::max)
            + 1;
        for (i, fd) in (0..).zip(fds) {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut fa.0,
                fd.as_raw_fd(),
                high + i,
            ))?;
        }
        for i in 0..n {
            check(libc::posix_spawn_file_actions_adddup2(
                &mut fa.0,
                high + i,
                3 + i,
            ))?;
            check(libc::posix_spawn_file_actions_addclose(&mut fa.0, high + i))?;
        }
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid and NUL-terminated for the call.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &fa.0,
            std::ptr::null(),
            argp.as_ptr(),
            envp.as_ptr(),
        )
    })?;
    Ok(pid)
}

/// Waits for the child `pid` to exit and collects it.
pub fn reap(pid: libc::pid_t) {
    loop {
        let mut status = 0;
        // SAFETY: a plain system call on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

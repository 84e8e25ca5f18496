//! The init's own process start: `clone(CLONE_VM | CLONE_VFORK)`, a few
//! set-up calls in the child, `execve`.
//!
//! Why not std's `Command`: it starts through glibc's `posix_spawn`, whose
//! child queries and resets the disposition of every one of the 64 signals
//! before `execve` (~120 `rt_sigaction` calls). Natively those are cheap;
//! under gVisor each is a trap into the Sentry, ~3 ms of every command start
//! with the init blocked meanwhile. The init knows which signals it handles
//! or ignores (`non_default_signals`), so its child resets just those. And
//! std falls back to a full `fork` of the init for a pre-exec hook (a
//! terminal, a session's fd 3) or a program looked up in a changed `PATH`;
//! here every start is the same `vfork`-style clone with no copy of the
//! init's memory.
//!
//! The child shares the init's memory until it execs, so everything it
//! needs (argv, environment, candidate paths, fds) is prepared before the
//! clone and the child only makes system calls: no allocation, no lock, no
//! panic. All signals (glibc's internal ones too, hence raw system calls)
//! stay blocked from before the clone until just before `execve`, and the
//! child resets every handled or ignored one first, so no handler of the
//! init's can run in the child and the command inherits no ignored signal.
//! (glibc's own `posix_spawn` leaves its internal signals 32 and 33 ignored
//! in the child; this start does not.)

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// The child's stack: it makes a handful of system calls and nothing else.
const CHILD_STACK: usize = 64 << 10;

/// What runs a script without `#!` (as `execvp`).
const SHELL: &CStr = c"/bin/sh";

/// Where glibc's `execvp` looks when `PATH` is unset (`confstr(_CS_PATH)`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// A command to start: program, arguments and its whole environment.
pub struct Spawn {
    program: OsString,
    argv: Vec<OsString>,
    /// Sorted by name, as std's `Command` passes it.
    env: BTreeMap<OsString, OsString>,
}

/// Where the command's fds 0, 1 and 2 go.
pub enum Stdio {
    /// Pipes to the init for stdout and stderr; stdin a pipe too, or
    /// `/dev/null`.
    Pipes { stdin: bool },
    /// The far end of a terminal for all three, which also becomes the
    /// controlling terminal of a new session the command leads.
    Terminal(OwnedFd),
}

/// A started command: its pid and the init's ends of its pipes, already
/// non-blocking.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Spawn {
    /// `program`, also its `argv[0]`; looked up in the command's `PATH`
    /// unless it has a `/`.
    pub fn new(program: impl AsRef<OsStr>) -> Spawn {
        let program = program.as_ref().to_os_string();
        Spawn {
            argv: vec![program.clone()],
            program,
            env: BTreeMap::new(),
        }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Spawn {
        self.argv.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Spawn {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Sets one variable (a later value for the same name wins).
    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Spawn {
        self.env
            .insert(k.as_ref().to_os_string(), v.as_ref().to_os_string());
        self
    }

    pub fn has_env(&self, k: &str) -> bool {
        self.env.contains_key(OsStr::new(k))
    }

    /// Starts the command in `cwd` with `stdio`, and with `fd3` (if any) as
    /// its fd 3. The init's other fds are close-on-exec, so they stay behind.
    pub fn start(&self, cwd: &str, stdio: Stdio, fd3: Option<RawFd>) -> io::Result<Spawned> {
        let argv = c_strings(self.argv.iter().map(|a| a.as_bytes().to_vec()))?;
        let envp = c_strings(self.env.iter().map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            kv
        }))?;
        let path = self.env.get(OsStr::new("PATH")).map(|p| p.as_os_str());
        let candidates = c_strings(candidates(&self.program, path).into_iter())?;
        if candidates.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let cwd = CString::new(cwd).map_err(|_| nul_error())?;
        let ends = Ends::new(stdio)?;
        let fd3_copy = match fd3 {
            Some(fd) if fd < 4 => Some(dup_above_stdio(fd)?),
            _ => None,
        };
        let fd3 = fd3_copy.as_ref().map_or(fd3, |f| Some(f.as_raw_fd()));
        let reset = non_default_signals();
        let argv_ptrs = pointers(&argv);
        let envp_ptrs = pointers(&envp);
        // As execvp, a program the kernel cannot run (ENOEXEC: a script
        // without `#!`) is run by /bin/sh; slot 1 is the path, filled in by
        // the child.
        let mut script_argv = vec![SHELL.as_ptr(), std::ptr::null()];
        script_argv.extend_from_slice(&argv_ptrs[1..]);
        let mut child = ChildArgs {
            candidates: &candidates,
            script_argv: script_argv.as_mut_ptr(),
            argv: argv_ptrs.as_ptr(),
            envp: envp_ptrs.as_ptr(),
            cwd: &cwd,
            stdio: ends.child,
            fd3: fd3.unwrap_or(-1),
            terminal: ends.terminal,
            reset,
            err: 0,
        };
        let pid = clone_and_exec(&mut child)?;
        // Our copies of the child's ends close here; only the command holds
        // them now (a pipe reads end-of-file once it exits).
        Ok(Spawned {
            pid,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
        })
    }
}

/// The paths the child tries in turn, as `execvp` would: the program itself
/// if it names a path, else the program in each directory of `PATH` (an
/// empty entry is the working directory).
fn candidates(program: &OsStr, path: Option<&OsStr>) -> Vec<Vec<u8>> {
    let prog = program.as_bytes();
    if prog.is_empty() {
        return Vec::new();
    }
    if prog.contains(&b'/') {
        return vec![prog.to_vec()];
    }
    let path = path.map_or(DEFAULT_PATH.as_bytes(), |p| p.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            if dir.is_empty() {
                return prog.to_vec();
            }
            let mut p = dir.to_vec();
            if !dir.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(prog);
            p
        })
        .collect()
}

fn c_strings(items: impl Iterator<Item = Vec<u8>>) -> io::Result<Vec<CString>> {
    items
        .map(|v| CString::new(v).map_err(|_| nul_error()))
        .collect()
}

fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "nul byte found in provided data",
    )
}

/// A null-terminated array of pointers into `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    let mut v: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
    v.push(std::ptr::null());
    v
}

/// `fd`, or if it is numbered below 4 a close-on-exec copy that is not, so
/// the child's `dup2`s onto 0-3 never overwrite a descriptor it has yet to
/// copy. (Only a copy costs a system call: under gVisor every one is a trap.)
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= 4 {
        return Ok(fd);
    }
    dup_above_stdio(fd.as_raw_fd())
}

fn dup_above_stdio(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor that we then own.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 4) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` was just made and nobody else has it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// `/dev/null` for a command's stdin, opened once (every command without
/// stdin shares it; reading it holds no state).
fn dev_null() -> io::Result<RawFd> {
    static NULL: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = above_stdio(std::fs::File::open("/dev/null")?.into())?;
    Ok(NULL.get_or_init(|| fd).as_raw_fd())
}

/// Both ends of the command's stdio: the child's (numbered 4 or more) and
/// the init's (non-blocking, for its reactor).
struct Ends {
    child: [RawFd; 3],
    terminal: bool,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// The child's ends we own: closed once the child has them.
    _owned: Vec<OwnedFd>,
}

impl Ends {
    fn new(stdio: Stdio) -> io::Result<Ends> {
        match stdio {
            Stdio::Terminal(slave) => {
                let s = above_stdio(slave)?;
                Ok(Ends {
                    child: [s.as_raw_fd(); 3],
                    terminal: true,
                    stdin: None,
                    stdout: None,
                    stderr: None,
                    _owned: vec![s],
                })
            }
            Stdio::Pipes { stdin } => {
                let mut owned = Vec::with_capacity(3);
                let (cin, pin) = if stdin {
                    let (r, w) = pipe_for_child(false)?;
                    owned.push(r);
                    (owned[0].as_raw_fd(), Some(w))
                } else {
                    (dev_null()?, None)
                };
                let (rout, wout) = pipe_for_child(true)?;
                let (rerr, werr) = pipe_for_child(true)?;
                let child = [cin, wout.as_raw_fd(), werr.as_raw_fd()];
                owned.extend([wout, werr]);
                Ok(Ends {
                    child,
                    terminal: false,
                    stdin: pin,
                    stdout: Some(rout),
                    stderr: Some(rerr),
                    _owned: owned,
                })
            }
        }
    }
}

/// A close-on-exec pipe (read end, write end) whose init's end (the read
/// end if `child_writes`, else the write end) is non-blocking and the
/// child's blocking, as programs expect of their stdio.
fn pipe_for_child(child_writes: bool) -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (r, w) = (above_stdio(r)?, above_stdio(w)?);
    rustix::io::ioctl_fionbio(if child_writes { &r } else { &w }, true)?;
    Ok((r, w))
}

/// What the child reads (all prepared by the parent) and writes (`err`).
struct ChildArgs<'a> {
    candidates: &'a [CString],
    /// `/bin/sh`, a slot for the script's path, `argv[1..]`, null.
    script_argv: *mut *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: &'a CStr,
    stdio: [RawFd; 3],
    fd3: RawFd,
    terminal: bool,
    /// Signals to reset to their default action (bit `n - 1` for signal `n`).
    reset: u64,
    /// The errno that stopped the child before `execve` succeeded; 0 if it
    /// exec'd.
    err: libc::c_int,
}

/// Clones the child with every signal blocked, restores the caller's mask,
/// and returns the pid once the child has exec'd (`CLONE_VFORK` holds this
/// thread until then). A child that failed is reaped here and its error
/// returned.
fn clone_and_exec(child: &mut ChildArgs) -> io::Result<u32> {
    let mut stack = vec![0u8; CHILD_STACK];
    // The stack grows down from its (16-byte aligned) end.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    let old = set_signal_mask(!0)?;
    // SAFETY: the child runs `child_main` on its own stack in our memory
    // and only makes system calls with what `child` points to, all of which
    // outlives the call: CLONE_VFORK returns here only once the child has
    // exec'd or exited.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            child as *mut ChildArgs as *mut libc::c_void,
        )
    };
    let clone_err = io::Error::last_os_error();
    // Restoring the mask saved above cannot fail (as setting it did not).
    let _ = set_signal_mask(old);
    drop(stack);
    if pid < 0 {
        return Err(clone_err);
    }
    // SAFETY: the child wrote `err` (if at all) before it exited.
    let err = unsafe { std::ptr::read_volatile(&child.err) };
    if err != 0 {
        let mut status = 0;
        // SAFETY: our own child, which has already called _exit.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(pid as u32)
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's ChildArgs, alive and untouched while
    // the parent waits for this child to exec or exit.
    let child = unsafe { &mut *(arg as *mut ChildArgs) };
    // Never 0 here: the parent reads 0 as "exec'd".
    let err = match unsafe { child.run() } {
        0 => libc::EIO,
        e => e,
    };
    // SAFETY: as above; the parent reads it after we are gone.
    unsafe {
        std::ptr::write_volatile(&mut child.err, err);
        libc::_exit(127)
    }
}

impl ChildArgs<'_> {
    /// Sets the child up and execs; returns only with the errno that
    /// stopped it.
    ///
    /// # Safety
    /// Only in the cloned child, before `execve`.
    unsafe fn run(&self) -> libc::c_int {
        // The kernel's sigaction (handler, flags, restorer, mask), all
        // zero: SIG_DFL. Raw, as glibc refuses its internal signals.
        let dfl = [0u64; 4];
        for sig in 1..=64 {
            if self.reset & (1 << (sig - 1)) != 0
                && libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), 0usize, 8usize) < 0
            {
                return errno();
            }
        }
        // A command leads its own process group, so signals and timeouts
        // reach its children too; one on a terminal leads a session of its
        // own with the terminal as its controlling one.
        let grouped = if self.terminal {
            libc::setsid()
        } else {
            libc::setpgid(0, 0)
        };
        if grouped < 0 {
            return errno();
        }
        for (to, from) in self.stdio.iter().enumerate() {
            if libc::dup2(*from, to as RawFd) < 0 {
                return errno();
            }
        }
        if self.terminal && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return errno();
        }
        if self.fd3 >= 0 && libc::dup2(self.fd3, 3) < 0 {
            return errno();
        }
        if libc::chdir(self.cwd.as_ptr()) < 0 {
            return errno();
        }
        if let Err(e) = set_signal_mask(0) {
            return e.raw_os_error().unwrap_or(libc::EINVAL);
        }
        // As execvp: a directory without the program (or not a directory)
        // moves on; one that forbids it is remembered; anything else stops.
        let mut denied = false;
        let mut last = libc::ENOENT;
        for path in self.candidates {
            libc::execve(path.as_ptr(), self.argv, self.envp);
            last = errno();
            if last == libc::ENOEXEC {
                *self.script_argv.add(1) = path.as_ptr();
                libc::execve(SHELL.as_ptr(), self.script_argv, self.envp);
                last = errno();
            }
            match last {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return last,
            }
        }
        if denied {
            libc::EACCES
        } else {
            last
        }
    }
}

/// Signals whose disposition the init itself changes: SIGCHLD (tokio's
/// handler, the reaper), SIGSEGV and SIGBUS (std's stack-overflow
/// handlers), SIGPIPE (ignored by std; an ignored signal stays ignored
/// across `execve`).
const OWN: [libc::c_int; 4] = [libc::SIGCHLD, libc::SIGSEGV, libc::SIGBUS, libc::SIGPIPE];

/// Signals to reset in a child (bit `n - 1` for signal `n`): those `OWN`
/// and whatever else `/proc` reports this process handles or ignores, such
/// as ignores inherited from whoever started it. gVisor's `/proc` does not
/// report them, but there the init starts with every disposition at its
/// default, so `OWN` is all. Read once, at the first start, which may
/// come before tokio installs its SIGCHLD handler (a pooled gVisor
/// sandbox's warm-up): so every handler the init installs must be in `OWN`.
fn non_default_signals() -> u64 {
    static SET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        let unchangeable = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));
        let own = OWN.iter().fold(0u64, |m, s| m | 1 << (s - 1));
        let reported = || -> Option<u64> {
            // One read into a page: procfs hands the whole file to a buffer
            // that holds it (std's read_to_string reads it in growing
            // pieces, each a trap under gVisor).
            let mut buf = [0u8; 4096];
            let n = std::io::Read::read(
                &mut std::fs::File::open("/proc/self/status").ok()?,
                &mut buf,
            )
            .ok()?;
            let status = std::str::from_utf8(&buf[..n]).ok()?;
            let field = |name: &str| {
                let hex = status.lines().find_map(|l| l.strip_prefix(name))?;
                u64::from_str_radix(hex.trim(), 16).ok()
            };
            Some(field("SigIgn:")? | field("SigCgt:")?)
        };
        (own | reported().unwrap_or(0)) & !unchangeable
    })
}

/// Sets this thread's signal mask to `mask` (bit `n - 1` for signal `n`)
/// with the raw system call, which unlike glibc's covers its internal
/// signals; returns the previous mask. Async-signal-safe.
fn set_signal_mask(mask: u64) -> io::Result<u64> {
    let mut old = 0u64;
    // SAFETY: the kernel reads and writes one 8-byte sigset on our stack.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            &mut old as *mut u64,
            8usize,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

fn errno() -> libc::c_int {
    // SAFETY: errno of this thread (the child shares the parent's thread
    // pointer; the parent is suspended meanwhile).
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The init's end of a pipe as a blocking file, for a test to read.
    fn blocking(fd: OwnedFd) -> std::fs::File {
        rustix::io::ioctl_fionbio(&fd, false).unwrap();
        std::fs::File::from(fd)
    }

    fn wait(pid: u32) -> libc::c_int {
        let mut status = 0;
        let r = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert_eq!(r, pid as i32, "waitpid");
        status
    }

    /// Reads a started command's stdout and stderr to their end and reaps
    /// it: both outputs and its raw wait status.
    fn collect(c: Spawned) -> (String, String, libc::c_int) {
        let (mut out, mut err) = (String::new(), String::new());
        blocking(c.stdout.unwrap())
            .read_to_string(&mut out)
            .unwrap();
        blocking(c.stderr.unwrap())
            .read_to_string(&mut err)
            .unwrap();
        (out, err, wait(c.pid))
    }

    /// Runs `s`, returns its stdout, stderr and exit code.
    fn output(s: &Spawn, cwd: &str) -> (String, String, i32) {
        let (out, err, st) = collect(s.start(cwd, Stdio::Pipes { stdin: false }, None).unwrap());
        assert!(libc::WIFEXITED(st), "status {st:#x}");
        (out, err, libc::WEXITSTATUS(st))
    }

    fn status_field(status: &str, name: &str) -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {status}"))
            .trim()
            .to_string()
    }

    #[test]
    fn a_command_starts_with_no_signal_ignored_or_blocked() {
        // Control: this process ignores SIGPIPE (std does) and, started by
        // cargo through glibc's posix_spawn, signal 32; this thread now also
        // blocks SIGUSR1. A command must inherit none of them.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        }
        let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let mut s = Spawn::new("/bin/cat");
        s.arg("/proc/self/status");
        let (out, _, code) = output(&s, "/");
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        assert_ne!(status_field(&own, "SigIgn:"), "0000000000000000");
        assert_ne!(status_field(&own, "SigBlk:"), "0000000000000000");
        assert_eq!(code, 0);
        assert_eq!(status_field(&out, "SigIgn:"), "0000000000000000");
        assert_eq!(status_field(&out, "SigBlk:"), "0000000000000000");
    }

    #[test]
    fn arguments_environment_directory_and_group_reach_the_command() {
        let mut s = Spawn::new("sh");
        s.args(["-c", "pwd; echo \"$A|$1\"; env | sort"])
            .args(["sh", "one two"])
            .env("PATH", "/nonexistent:/usr/bin:/bin")
            .env("A", "first")
            .env("A", "a");
        assert!(s.has_env("A") && !s.has_env("B"));
        let (out, err, code) = output(&s, "/tmp");
        assert_eq!((code, err.as_str()), (0, ""));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "/tmp");
        assert_eq!(lines[1], "a|one two");
        // Exactly the environment given (sh adds PWD and maybe SHLVL).
        let env: Vec<&str> = lines[2..]
            .iter()
            .copied()
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .collect();
        assert_eq!(env, ["A=a", "PATH=/nonexistent:/usr/bin:/bin"]);
        let (out2, _, _) = output(
            Spawn::new("/bin/sh").args(["-c", "echo $$; cut -d' ' -f5 /proc/self/stat"]),
            "/",
        );
        let ids: Vec<&str> = out2.lines().collect();
        assert_eq!(ids[0], ids[1], "the command leads its own process group");
    }

    #[test]
    fn lookup_follows_path_and_reports_why_it_failed() {
        // No PATH: execvp's default.
        let (out, _, code) = output(Spawn::new("echo").arg("hi"), "/");
        assert_eq!((out.as_str(), code), ("hi\n", 0));
        let mut s = Spawn::new("echo");
        s.env("PATH", "/nonexistent");
        let e = s
            .start("/", Stdio::Pipes { stdin: false }, None)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        // A file that is not executable: EACCES, even when a later PATH
        // entry has nothing either.
        let dir = std::env::temp_dir().join(format!("warden-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("prog"), "#!/bin/sh\n").unwrap();
        let mut s = Spawn::new("prog");
        s.env("PATH", format!("{}:/nonexistent", dir.display()));
        let e = s
            .start("/", Stdio::Pipes { stdin: false }, None)
            .unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        // A missing working directory, an empty program, a NUL.
        let e = Spawn::new("/bin/true")
            .start("/nonexistent", Stdio::Pipes { stdin: false }, None)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = Spawn::new("")
            .start("/", Stdio::Pipes { stdin: false }, None)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let e = Spawn::new("/bin/true")
            .arg("a\0b")
            .start("/", Stdio::Pipes { stdin: false }, None)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }

    #[test]
    fn stdin_and_fd3_are_the_pipes_given() {
        let (r3, w3) = pipe_for_child(true).unwrap();
        let mut s = Spawn::new("/bin/sh");
        s.args(["-c", "cat; echo extra >&3"]);
        let c = s
            .start("/", Stdio::Pipes { stdin: true }, Some(w3.as_raw_fd()))
            .unwrap();
        drop(w3);
        let mut stdin = blocking(c.stdin.unwrap());
        stdin.write_all(b"typed\n").unwrap();
        drop(stdin);
        let mut out = String::new();
        blocking(c.stdout.unwrap())
            .read_to_string(&mut out)
            .unwrap();
        let mut extra = String::new();
        blocking(r3).read_to_string(&mut extra).unwrap();
        assert_eq!(wait(c.pid), 0);
        assert_eq!((out.as_str(), extra.as_str()), ("typed\n", "extra\n"));
    }

    #[test]
    fn a_script_without_an_interpreter_line_runs_under_sh() {
        let dir = std::env::temp_dir().join(format!("warden-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("plain");
        std::fs::write(&script, "echo \"ran with $1\"\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut found = Spawn::new("plain");
        found.arg("x").env("PATH", dir.as_os_str());
        let mut named = Spawn::new(&script);
        named.arg("y");
        let (a, b) = (run_retrying(&found), run_retrying(&named));
        // Control: a file that is no program and no text for sh either.
        std::fs::write(&script, b"\x7fELF\x02garbage").unwrap();
        let (_, err, code) = run_retrying(&named);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((a.0.as_str(), a.2), ("ran with x\n", 0));
        assert_eq!((b.0.as_str(), b.2), ("ran with y\n", 0));
        assert_ne!(code, 0, "{err}");
    }

    /// `output`, again while the kernel answers ETXTBSY: a test thread's
    /// clone can hold a copy of the file's write descriptor for a moment.
    fn run_retrying(s: &Spawn) -> (String, String, i32) {
        for _ in 0..100 {
            match s.start("/", Stdio::Pipes { stdin: false }, None) {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
                Ok(c) => {
                    let (out, err, st) = collect(c);
                    return (out, err, libc::WEXITSTATUS(st));
                }
            }
        }
        panic!("still ETXTBSY");
    }

    #[test]
    fn without_stdin_the_command_reads_end_of_file() {
        let (out, _, code) = output(Spawn::new("/bin/sh").args(["-c", "cat; echo done"]), "/");
        assert_eq!((out.as_str(), code), ("done\n", 0));
    }
}

//! Host-wide cgroup tuning that sandbox start-up depends on.
//!
//! Moving a process into a cgroup takes the kernel's global threadgroup
//! rwsem for writing. In its default ("fast readers") mode each such write
//! waits for an RCU grace period: 5-18 ms on the first sandbox after a
//! second of idle, against ~70 µs when warm. The `favordynmods` mount option
//! of any cgroup2 mount switches that rwsem to the mode meant for hosts that
//! move processes often (what container hosts do), at a small cost to
//! fork/exit. It is a per-host switch, so Warden turns it on when it can
//! and says so, and an operator can opt out.

use crate::error::{CgroupError, Op};
use std::path::PathBuf;

/// The cgroup2 mount whose options to change, and whether it already has
/// `favordynmods`. `None` when no cgroup2 hierarchy is mounted.
fn find_cgroup2() -> Result<Option<(PathBuf, Vec<String>)>, CgroupError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| CgroupError::io(Op::Read, "/proc/self/mountinfo", e))?;
    for line in info.lines() {
        // id parent maj:min root mountpoint options ... - fstype source superopts
        let (pre, post) = match line.split_once(" - ") {
            Some(p) => p,
            None => continue,
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup2") {
            continue;
        }
        let f: Vec<&str> = pre.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let mut opts: Vec<String> = f[5].split(',').map(String::from).collect();
        opts.extend(post.nth(1).unwrap_or("").split(',').map(String::from));
        return Ok(Some((PathBuf::from(f[4]), opts)));
    }
    Ok(None)
}

/// Turns on `favordynmods` on the host's cgroup2 mount if it is off.
/// Returns whether the option is now on.
pub fn favor_dynamic_mods() -> Result<bool, CgroupError> {
    let Some((path, opts)) = find_cgroup2()? else {
        return Ok(false);
    };
    if opts.iter().any(|o| o == "favordynmods") {
        return Ok(true);
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| CgroupError::io(Op::Write, &path, std::io::ErrorKind::InvalidInput.into()))?;
    // Keep the per-mount flags a remount would otherwise clear.
    let mut flags = libc::MS_REMOUNT;
    for (name, flag) in [
        ("nosuid", libc::MS_NOSUID),
        ("nodev", libc::MS_NODEV),
        ("noexec", libc::MS_NOEXEC),
        ("ro", libc::MS_RDONLY),
        ("relatime", libc::MS_RELATIME),
    ] {
        if opts.iter().any(|o| o == name) {
            flags |= flag;
        }
    }
    // SAFETY: valid C strings that outlive the call.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c_path.as_ptr(),
            std::ptr::null(),
            flags,
            c"favordynmods".as_ptr().cast(),
        )
    };
    if r < 0 {
        return Err(CgroupError::io(
            Op::Write,
            &path,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(true)
}

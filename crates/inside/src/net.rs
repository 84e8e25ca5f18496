//! The loopback interface, brought up with one ioctl (no netlink library
//! needed for it). Run by a new init in its network namespace, and by the
//! host's namespace pool in the namespaces it prepares.

use std::io;

fn check(what: &'static str, r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(())
    }
}

/// Brings up `lo` in the caller's network namespace. A namespace from the
/// host's pool has it up already, and there the init has no right to
/// change it (the namespace belongs to the host's user namespace), so an
/// interface already up is left alone.
pub fn loopback_up() -> io::Result<()> {
    let up = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: a socket we close on every path, and ioctls on a zeroed
    // ifreq that names `lo`.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check("socket for lo", s)?;
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
        if r == 0 && req.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short != 0 {
            libc::close(s);
            return Ok(());
        }
        if r == 0 {
            req.ifr_ifru.ifru_flags |= up;
        }
        let r = if r == 0 {
            libc::ioctl(s, libc::SIOCSIFFLAGS, &req)
        } else {
            r
        };
        libc::close(s);
        check("bring lo up", r)
    }
}

//! Capability dropping and `no_new_privs`, with raw `prctl`/`capset`.
//!
//! Not the `caps` crate: it enumerates a fixed list of capabilities, so a
//! capability added by a newer kernel would survive in the bounding set. Here
//! the bounding set is walked until the kernel reports `EINVAL` (past
//! `CAP_LAST_CAP`), and capset clears all 64 bits at once.

use std::io;

use crate::ConfineError;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// Upper bound for the bounding-set walk (the capability sets are 64 bits wide).
const MAX_CAPS: u32 = 64;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three per-thread sets as 64-bit masks.
struct ThreadCaps {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// Drops every capability: bounding set (needs `CAP_SETPCAP`, so call it while
/// still privileged), ambient, inheritable, permitted and effective, then
/// checks that all five sets are empty.
///
/// If the bounding set is already empty (e.g. [`drop_bounding_and_ambient`]
/// ran before a switch to a non-root uid), no privilege is needed.
pub fn drop_all_capabilities() -> Result<(), ConfineError> {
    drop_bounding_and_ambient()?;
    capset(&[CapData::default(); 2], "effective/permitted/inheritable")?;
    verify_empty(true)?;
    tracing::debug!("all capabilities dropped");
    Ok(())
}

/// Clears the bounding, ambient and inheritable sets but keeps permitted and
/// effective, for callers that `setresuid` to a non-root uid next (the uid
/// change clears permitted/effective, and needs `CAP_SETUID` until then).
pub fn drop_bounding_and_ambient() -> Result<(), ConfineError> {
    drop_bounding()?;
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc != 0 {
        let source = io::Error::last_os_error();
        // EINVAL: kernel without ambient capabilities (< 4.3), nothing to clear.
        if source.raw_os_error() != Some(libc::EINVAL) {
            return Err(ConfineError::CapAmbientClear { source });
        }
    }
    let mut data = capget()?;
    for d in &mut data {
        d.inheritable = 0;
    }
    capset(&data, "inheritable")?;
    // Every drop above was reported done; reading the bounding and ambient
    // sets back (80-odd more calls) is left to `drop_all_capabilities`.
    all_empty(&[("inheritable", thread_caps()?.inheritable)])
}

/// The last step after [`drop_bounding_and_ambient`] and a switch to a
/// non-root uid: empties the effective, permitted and inheritable sets and
/// checks all three (the bounding and ambient sets were emptied before).
pub fn clear_capability_sets() -> Result<(), ConfineError> {
    capset(&[CapData::default(); 2], "effective/permitted/inheritable")?;
    let caps = thread_caps()?;
    all_empty(&[
        ("effective", caps.effective),
        ("permitted", caps.permitted),
        ("inheritable", caps.inheritable),
    ])
}

/// Sets `PR_SET_NO_NEW_PRIVS` (execve can no longer grant privileges through
/// setuid bits or file capabilities) and checks it stuck.
pub fn set_no_new_privs() -> Result<(), ConfineError> {
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(ConfineError::NoNewPrivs {
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: plain prctl with integer arguments.
    let now = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    if now != 1 {
        return Err(ConfineError::NoNewPrivs {
            source: io::Error::other(format!("PR_GET_NO_NEW_PRIVS returned {now}")),
        });
    }
    Ok(())
}

/// Drops each capability from the bounding set, walking until the kernel
/// reports `EINVAL` (past `CAP_LAST_CAP`). One `PR_CAPBSET_DROP` per
/// capability while privileged (dropping an absent one succeeds); without
/// `CAP_SETPCAP` every drop is refused, and then a capability only has to
/// be absent already.
fn drop_bounding() -> Result<(), ConfineError> {
    for cap in 0..MAX_CAPS {
        // SAFETY: plain prctl with integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc == 0 {
            continue;
        }
        let source = io::Error::last_os_error();
        match source.raw_os_error() {
            Some(libc::EINVAL) => break, // past CAP_LAST_CAP
            // Unprivileged: fine if the capability is gone already (or
            // past the last one: the privilege check comes first).
            Some(libc::EPERM) => match bounding_has(cap)? {
                None => break,
                Some(false) => {}
                Some(true) => return Err(ConfineError::CapBoundingDrop { cap, source }),
            },
            _ => return Err(ConfineError::CapBoundingDrop { cap, source }),
        }
    }
    Ok(())
}

/// `Some(present)`, or `None` when `cap` is beyond the kernel's last capability.
fn bounding_has(cap: u32) -> Result<Option<bool>, ConfineError> {
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
    match rc {
        0 => Ok(Some(false)),
        1 => Ok(Some(true)),
        _ => {
            let source = io::Error::last_os_error();
            if source.raw_os_error() == Some(libc::EINVAL) {
                Ok(None)
            } else {
                Err(ConfineError::CapBoundingRead { cap, source })
            }
        }
    }
}

fn bounding_mask() -> Result<u64, ConfineError> {
    let mut mask = 0u64;
    for cap in 0..MAX_CAPS {
        match bounding_has(cap)? {
            None => break,
            Some(true) => mask |= 1 << cap,
            Some(false) => {}
        }
    }
    Ok(mask)
}

fn capget() -> Result<[CapData; 2], ConfineError> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: v3 header plus two data structs, as capget(2) requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(ConfineError::Capset {
            what: "(reading)",
            source: io::Error::last_os_error(),
        });
    }
    Ok(data)
}

fn capset(data: &[CapData; 2], what: &'static str) -> Result<(), ConfineError> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: v3 header plus two data structs, as capset(2) requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(ConfineError::Capset {
            what,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn thread_caps() -> Result<ThreadCaps, ConfineError> {
    let d = capget()?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(ThreadCaps {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
    })
}

fn ambient_mask() -> u64 {
    let mut mask = 0u64;
    for cap in 0..MAX_CAPS {
        // SAFETY: plain prctl with integer arguments.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
                cap as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc < 0 {
            break; // past CAP_LAST_CAP, or no ambient support
        }
        if rc == 1 {
            mask |= 1 << cap;
        }
    }
    mask
}

fn verify_empty(all_sets: bool) -> Result<(), ConfineError> {
    let caps = thread_caps()?;
    let mut checks = vec![
        ("bounding", bounding_mask()?),
        ("ambient", ambient_mask()),
        ("inheritable", caps.inheritable),
    ];
    if all_sets {
        checks.push(("permitted", caps.permitted));
        checks.push(("effective", caps.effective));
    }
    all_empty(&checks)
}

/// An error naming the first of `sets` (name, mask) that is not empty.
fn all_empty(sets: &[(&'static str, u64)]) -> Result<(), ConfineError> {
    match sets.iter().find(|&&(_, mask)| mask != 0) {
        Some(&(set, mask)) => Err(ConfineError::CapsRemain { set, mask }),
        None => Ok(()),
    }
}

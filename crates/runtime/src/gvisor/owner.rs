//! Names of gVisor sandboxes, and whether the process that made one is alive.
//!
//! Several Warden processes may share one state directory (a server, and
//! `warden run` invocations next to it), so a runtime starting up must only
//! reap what a dead process left. Each sandbox id carries its owner's pid and
//! the owner's start time (so a recycled pid is not mistaken for the owner):
//! `wg-<pid>-<starttime>-<random>`. The id is also a valid runsc container id
//! and cgroup name.

use std::path::Path;

const PREFIX: &str = "wg-";

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), if the process exists.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    // The command name may contain spaces and parentheses: fields resume
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field 22 is the 20th from there.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Identifies this process as an owner of sandboxes.
#[derive(Debug, Clone)]
pub struct Owner {
    tag: String,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        let start = start_time(pid).unwrap_or(0);
        Owner {
            tag: format!("{PREFIX}{pid}-{start}-"),
        }
    }

    /// A fresh sandbox id owned by this process.
    pub fn new_id(&self) -> String {
        format!("{}{:016x}", self.tag, rand::random::<u64>())
    }
}

/// Whether `id` is a Warden gVisor sandbox whose owner is gone. Names that
/// are not ours at all are never touched.
pub fn is_orphan(id: &str) -> bool {
    let Some(rest) = id.strip_prefix(PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(3, '-');
    let (Some(pid), Some(start), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) != Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids_are_alive_and_foreign_names_are_left_alone() {
        let o = Owner::current();
        let id = o.new_id();
        assert!(id.starts_with("wg-"));
        assert!(!is_orphan(&id), "{id} should belong to this live process");
        assert!(!is_orphan("something-else"));
        assert!(!is_orphan("wg-garbage"));
        // pid_max is at most 2^22: this pid cannot exist.
        assert!(is_orphan("wg-99999999-1-00"));
        // Our pid with the wrong start time: a recycled pid, so an orphan.
        let pid = std::process::id();
        assert!(is_orphan(&format!("wg-{pid}-1-00")));
    }
}

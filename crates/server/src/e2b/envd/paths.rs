//! E2B paths: relative ones are under the user's home, and every path the
//! API hands back is absolute and lexically clean. (Resolution against the
//! filesystem, symlinks included, happens in the init, inside the sandbox's
//! own view; this is only spelling.)

use warden_envd_wire::connect::Error;

/// Where relative paths start: the `user` account's `HOME` and default
/// working directory, as in E2B (every sandbox the E2B API creates runs as
/// `user`).
pub const HOME: &str = warden_spec::USER_HOME;

/// Absolute, with `.`, `..` and repeated slashes folded (`..` stops at `/`).
pub fn absolute(path: &str) -> Result<String, Error> {
    if path.is_empty() {
        return Err(Error::invalid_argument("path is empty"));
    }
    if path.contains('\0') {
        return Err(Error::invalid_argument("path contains a NUL byte"));
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else if let Some(rest) = path.strip_prefix("~") {
        format!("{HOME}/{rest}")
    } else {
        format!("{HOME}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The last component (`/` for the root).
pub fn base_name(path: &str) -> &str {
    match path.rsplit('/').next() {
        Some("") | None => "/",
        Some(n) => n,
    }
}

/// The parent directory of an absolute clean path.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

pub use crate::snapshots::join;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_absolute_and_clean() {
        assert_eq!(absolute("a.txt").unwrap(), "/home/user/a.txt");
        assert_eq!(absolute("~/a/../b").unwrap(), "/home/user/b");
        assert_eq!(absolute("/tmp//x/./y/").unwrap(), "/tmp/x/y");
        assert_eq!(absolute("/../../etc").unwrap(), "/etc");
        assert_eq!(absolute("/").unwrap(), "/");
        assert!(absolute("").is_err());
        assert!(absolute("a\0b").is_err());
        assert_eq!(base_name("/tmp/x"), "x");
        assert_eq!(base_name("/"), "/");
        assert_eq!(parent("/tmp/x"), "/tmp");
        assert_eq!(parent("/tmp"), "/");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/tmp", "a"), "/tmp/a");
    }
}

//! Copying a sandbox's `/output` to the host without trusting anything in it.
//!
//! The sandbox side is read through the init's protocol (strict reads: no
//! symlink anywhere in the path, one link only), so the walk works the same
//! for every isolation tier. The host side is written through a `cap_std`
//! directory handle, which cannot be led outside the destination by `..`,
//! absolute paths or symlinks. Only plain files and directories with
//! ordinary names are taken; everything else is reported, never followed.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::io::Write;
use std::path::Path;
use warden_protocol::{Client, ClientError, FileKind, Request, Response};

/// How deep the exported tree may nest.
const MAX_DEPTH: usize = 32;
/// Longest accepted file name, in bytes.
const MAX_NAME: usize = 255;
/// Skipped entries listed by name in a report; more are only counted (a
/// sandbox can make any number, and the list ends up in a manifest).
pub const MAX_SKIPPED_LISTED: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path inside the sandbox, with unprintable bytes escaped.
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Relative paths of the files written, with their sizes.
    pub files: Vec<(String, u64)>,
    /// The first [`MAX_SKIPPED_LISTED`] entries not taken, and why.
    pub skipped: Vec<Skipped>,
    /// Entries not taken beyond those listed in `skipped`.
    pub skipped_unlisted: u64,
    pub bytes: u64,
    /// Files and directories taken (each costs the host an inode).
    pub entries: u64,
    /// Something was left out because of [`ExportLimits`] (as opposed to
    /// names, links and special files, which are never taken).
    pub truncated: bool,
}

impl ExportReport {
    fn skip(&mut self, path: String, reason: String) {
        push_skip(&mut self.skipped, &mut self.skipped_unlisted, path, reason)
    }
}

/// Lists a skipped entry, or only counts it once the list is full.
fn push_skip(list: &mut Vec<Skipped>, unlisted: &mut u64, path: String, reason: String) {
    if list.len() < MAX_SKIPPED_LISTED {
        list.push(Skipped { path, reason });
    } else {
        *unlisted += 1;
    }
}

/// How much an export may take. Sizes are apparent sizes: a sparse file
/// costs the sandbox almost nothing but is copied (and stored) in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    pub max_bytes: u64,
    /// Files and directories, together.
    pub max_entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("destination {path}: {source}")]
    Dest {
        path: String,
        source: std::io::Error,
    },
    #[error("reading the sandbox: {0}")]
    Sandbox(#[from] ClientError),
}

/// Why a name from the sandbox is refused, if it is.
pub fn check_name(name: &[u8]) -> Result<&str, &'static str> {
    let s = std::str::from_utf8(name).map_err(|_| "name is not valid UTF-8")?;
    if s.is_empty() || s == "." || s == ".." {
        return Err("name is empty, '.' or '..'");
    }
    if s.len() > MAX_NAME {
        return Err("name is too long");
    }
    if s.contains(['/', '\\']) {
        return Err("name contains a path separator");
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("name contains control characters");
    }
    Ok(s)
}

fn escaped(path: &[u8]) -> String {
    path.escape_ascii().to_string()
}

/// Exports `src` (a directory inside the sandbox) into the host directory
/// `dest` (created if missing), taking at most `max_bytes` in all.
pub async fn export(
    client: &Client,
    src: &str,
    dest: &Path,
    max_bytes: u64,
) -> Result<ExportReport, ExportError> {
    let limits = ExportLimits {
        max_bytes,
        max_entries: u64::MAX,
    };
    export_limited(client, src, dest, limits).await
}

/// [`export`] within `limits` of bytes and entries.
pub async fn export_limited(
    client: &Client,
    src: &str,
    dest: &Path,
    limits: ExportLimits,
) -> Result<ExportReport, ExportError> {
    let max_bytes = limits.max_bytes;
    let dest_err = |source| ExportError::Dest {
        path: dest.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dest).map_err(dest_err)?;
    let root = Dir::open_ambient_dir(dest, ambient_authority()).map_err(dest_err)?;
    let mut report = ExportReport::default();
    // Depth-first with an explicit stack: (sandbox path, relative path, depth).
    let mut stack = vec![(src.trim_end_matches('/').to_string(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let entries = match client.list_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.remote_kind().is_some() => {
                report.skip(dir.clone(), format!("cannot list: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for ent in entries {
            let shown = format!("{dir}/{}", escaped(&ent.name));
            let name = match check_name(&ent.name) {
                Ok(n) => n,
                Err(why) => {
                    report.skip(shown, why.into());
                    continue;
                }
            };
            let taken = matches!(ent.stat.kind, FileKind::Dir | FileKind::File);
            if taken && report.entries >= limits.max_entries {
                report.truncated = true;
                report.skip(
                    shown,
                    format!(
                        "over the export limit of {} files and directories",
                        limits.max_entries
                    ),
                );
                continue;
            }
            // Borrows only the skip list, so the arms below can count.
            let mut skip = |reason: String| {
                push_skip(
                    &mut report.skipped,
                    &mut report.skipped_unlisted,
                    shown.clone(),
                    reason,
                )
            };
            let child_rel = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            match ent.stat.kind {
                FileKind::Dir if depth + 1 >= MAX_DEPTH => skip("nested too deep".into()),
                FileKind::Dir => match root.create_dir(&child_rel) {
                    Ok(()) => {
                        report.entries += 1;
                        stack.push((format!("{dir}/{name}"), child_rel, depth + 1))
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::AlreadyExists
                            && root
                                .metadata(&child_rel)
                                .map(|m| m.is_dir())
                                .unwrap_or(false) =>
                    {
                        stack.push((format!("{dir}/{name}"), child_rel, depth + 1))
                    }
                    Err(e) => skip(format!("cannot create directory: {e}")),
                },
                FileKind::File if ent.stat.nlink == 0 => skip("removed during export".into()),
                FileKind::File if ent.stat.nlink != 1 => {
                    skip(format!("hard link ({} links)", ent.stat.nlink))
                }
                FileKind::File if ent.stat.size > max_bytes - report.bytes => {
                    skip(format!(
                        "{} bytes would pass the {max_bytes}-byte export limit",
                        ent.stat.size
                    ));
                    report.truncated = true;
                }
                FileKind::File => {
                    let budget = max_bytes - report.bytes;
                    match copy_file(client, &format!("{dir}/{name}"), &root, &child_rel, budget)
                        .await
                    {
                        Ok(n) => {
                            report.bytes += n;
                            report.entries += 1;
                            report.files.push((child_rel, n));
                        }
                        Err(CopyError::Skip(why, over)) => {
                            skip(why);
                            report.truncated |= over;
                        }
                        Err(CopyError::Fatal(e)) => return Err(e),
                    }
                }
                FileKind::Symlink => skip("symlink (never followed)".into()),
                other => skip(format!("special file ({other:?})")),
            }
        }
    }
    report.files.sort();
    Ok(report)
}

enum CopyError {
    /// Not taken, and whether because it passed the byte limit.
    Skip(String, bool),
    Fatal(ExportError),
}

async fn copy_file(
    client: &Client,
    src: &str,
    root: &Dir,
    rel: &str,
    budget: u64,
) -> Result<u64, CopyError> {
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    let mut out = root
        .open_with(rel, &opts)
        .map_err(|e| CopyError::Skip(format!("cannot create on the host: {e}"), false))?;
    // One byte past the budget tells a file that grew after listing.
    let mut s = client
        .stream(Request::ReadFile {
            path: src.to_string(),
            offset: 0,
            limit: Some(budget.saturating_add(1)),
            strict: true,
            links_ok: false,
        })
        .map_err(|e| CopyError::Fatal(e.into()))?;
    let mut n = 0u64;
    let result = loop {
        match s.next().await {
            Ok(Some(Response::Data(d))) => {
                n += d.len() as u64;
                if n > budget {
                    break Err(CopyError::Skip("grew past the export limit".into(), true));
                }
                if let Err(e) = out.write_all(&d) {
                    break Err(CopyError::Skip(format!("host write failed: {e}"), false));
                }
            }
            Ok(Some(Response::Done)) => break Ok(n),
            Ok(Some(other)) => {
                break Err(CopyError::Skip(
                    format!("unexpected reply {other:?}"),
                    false,
                ))
            }
            Ok(None) => break Ok(n),
            Err(e) if e.remote_kind().is_some() => {
                break Err(CopyError::Skip(e.to_string(), false))
            }
            Err(e) => break Err(CopyError::Fatal(e.into())),
        }
    };
    if result.is_err() {
        drop(out);
        let _ = root.remove_file(rel);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name(b"report.html"), Ok("report.html"));
        assert_eq!(
            check_name("r\u{e9}sum\u{e9}.md".as_bytes()),
            Ok("résumé.md")
        );
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"a/b",
            b"a\\b",
            b"line\nbreak",
            b"tab\t",
            b"\xff\xfe",
            b"nul\0",
            &[b'a'; 256][..],
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(b"..hidden").is_ok());
    }
}

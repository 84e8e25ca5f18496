//! `EntryInfo`, E2B's description of a file, from the init's `lstat`.

use super::paths::base_name;
use warden_envd_wire::filesystem::{EntryInfo, FileType};
use warden_envd_wire::pbjson_types::Timestamp;
use warden_protocol::{FileKind, FileStat};

/// The names the sandbox's synthesised /etc/passwd and /etc/group give.
/// An id they do not name is shown as its number.
fn account(id: u32) -> String {
    match warden_runtime::native::setup::user_name(id) {
        Some(name) => name.into(),
        None if id == 65534 => "nobody".into(),
        None => id.to_string(),
    }
}

/// `ls -l`'s mode string as Go's `fs.FileMode` prints it (envd is Go):
/// `drwxr-xr-x`, `-rw-r--r--`, `Lrwxrwxrwx`...
fn permissions(kind: FileKind, mode: u32) -> String {
    let lead = match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'L',
        FileKind::Fifo => 'p',
        FileKind::Socket => 'S',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'D',
        FileKind::File | FileKind::Other => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(lead);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::File,
        FileKind::Dir => FileType::Directory,
        _ => FileType::Unspecified,
    }
}

/// A symlink is described as envd describes one: by where it leads (the
/// type and mode of its end, the end's canonical path as its target), its
/// own size, name and `L` mode string; a dangling one has no target and an
/// unspecified type.
pub fn entry(path: &str, st: &FileStat) -> EntryInfo {
    let (kind, mode, target) = match (&st.kind, &st.resolved) {
        (FileKind::Symlink, Some(end)) => (
            file_type(end.kind),
            end.mode & 0o7777,
            Some(String::from_utf8_lossy(&end.path).into_owned()),
        ),
        (FileKind::Symlink, None) => (FileType::Unspecified, st.mode & 0o7777, None),
        (k, _) => (file_type(*k), st.mode & 0o7777, None),
    };
    EntryInfo {
        name: base_name(path).to_string(),
        r#type: kind as i32,
        path: path.to_string(),
        size: i64::try_from(st.size).unwrap_or(i64::MAX),
        mode,
        permissions: permissions(st.kind, st.mode),
        owner: account(st.uid),
        group: account(st.gid),
        modified_time: Some(Timestamp {
            seconds: st.mtime,
            nanos: 0,
        }),
        symlink_target: target,
        metadata: st.meta.iter().cloned().collect(),
        is_symlink: st.kind == FileKind::Symlink,
    }
}

/// The `/files` upload answer's entry type word.
pub fn type_word(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Dir => "dir",
        _ => "file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_print_like_go() {
        assert_eq!(permissions(FileKind::Dir, 0o40755), "drwxr-xr-x");
        assert_eq!(permissions(FileKind::File, 0o100644), "-rw-r--r--");
        assert_eq!(permissions(FileKind::Symlink, 0o120777), "Lrwxrwxrwx");
        let st = FileStat {
            kind: FileKind::File,
            size: 3,
            mode: 0o100600,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 5,
            link_target: None,
            resolved: None,
            meta: vec![("author".into(), "mish".into())],
        };
        let e = entry("/tmp/a", &st);
        assert_eq!(
            (e.name.as_str(), e.mode, e.owner.as_str()),
            ("a", 0o600, "root")
        );
        assert_eq!(e.r#type, FileType::File as i32);
        assert!(!e.is_symlink);
        assert_eq!(e.metadata.get("author").map(String::as_str), Some("mish"));

        // A link is told by its end; a dangling one has none.
        let link = FileStat {
            kind: FileKind::Symlink,
            mode: 0o120777,
            link_target: Some(b"../data".to_vec()),
            resolved: Some(warden_protocol::Resolved {
                path: b"/scratch/data".to_vec(),
                kind: FileKind::Dir,
                mode: 0o40750,
            }),
            ..st.clone()
        };
        let e = entry("/scratch/x/link", &link);
        assert_eq!(e.r#type, FileType::Directory as i32);
        assert_eq!((e.mode, e.permissions.as_str()), (0o750, "Lrwxrwxrwx"));
        assert_eq!(e.symlink_target.as_deref(), Some("/scratch/data"));
        assert!(e.is_symlink);
        let dangling = entry(
            "/scratch/x/link",
            &FileStat {
                resolved: None,
                ..link
            },
        );
        assert_eq!(dangling.r#type, FileType::Unspecified as i32);
        assert_eq!(dangling.symlink_target, None);
    }
}

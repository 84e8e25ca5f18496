//! What an upload's bytes are, as one of a few type names a tenant's policy
//! lists. The MIME type comes from `sniff` (the `infer` crate and text
//! heuristics on the first 8 KiB); this maps it to a name and, for text,
//! looks at the rest of the file too.

use std::io::Read;
use std::path::Path;

/// Every type name a policy may list.
pub const TYPES: &[&str] = &[
    "pdf",
    "csv",
    "text",
    "json",
    "html",
    "xml",
    "xlsx",
    "docx",
    "pptx",
    "png",
    "jpeg",
    "gif",
    "webp",
    "zip",
    "archive",
    "executable",
    "octet-stream",
    "other",
    "empty",
];

/// What a tenant accepts unless an admin (or the configuration) says
/// otherwise: documents, tables and images; no programs, no archives that
/// are not office files, no unknown binaries, no empty files.
pub const DEFAULT_ALLOWED: &[&str] = &["pdf", "csv", "text", "json", "xlsx", "docx", "png", "jpeg"];

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
pub const OCTET: &str = "application/octet-stream";

/// An upload's type as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// One of [`TYPES`].
    pub name: &'static str,
    /// The MIME type recorded on the file.
    pub mime: String,
    /// Why the name is what it is, when the bytes could mislead (a text
    /// head over binary data, a damaged zip).
    pub detail: Option<String>,
}

impl Found {
    pub fn new(name: &'static str, mime: &str) -> Found {
        Found {
            name,
            mime: mime.to_string(),
            detail: None,
        }
    }

    /// `executable (application/x-executable)`, plus the detail if any.
    pub fn describe(&self) -> String {
        match &self.detail {
            Some(d) => format!("{} ({}; {d})", self.name, self.mime),
            None => format!("{} ({})", self.name, self.mime),
        }
    }
}

/// The type name of a sniffed MIME type.
pub fn of_mime(mime: &str) -> &'static str {
    match mime {
        "application/x-empty" => "empty",
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        // A `#!` line does not make text a binary: agents upload their code.
        "text/plain" | "text/x-shellscript" => "text",
        "application/json" => "json",
        "text/html" => "html",
        "text/xml" => "xml",
        "image/png" => "png",
        "image/jpeg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        XLSX => "xlsx",
        DOCX => "docx",
        PPTX => "pptx",
        "application/zip" => "zip",
        "application/x-executable"
        | "application/vnd.microsoft.portable-executable"
        | "application/x-mach-binary"
        | "application/wasm"
        | "application/vnd.android.dex"
        | "application/vnd.android.dey"
        | "application/java"
        | "application/x-llvm" => "executable",
        "application/gzip"
        | "application/x-tar"
        | "application/x-7z-compressed"
        | "application/vnd.rar"
        | "application/x-bzip2"
        | "application/vnd.bzip3"
        | "application/x-xz"
        | "application/zstd"
        | "application/x-lz4"
        | "application/x-lzip"
        | "application/x-compress"
        | "application/vnd.ms-cab-compressed"
        | "application/vnd.debian.binary-package"
        | "application/x-rpm"
        | "application/x-cpio"
        | "application/x-unix-archive" => "archive",
        OCTET => "octet-stream",
        _ => "other",
    }
}

/// Types whose sniff looked only at the head's being text.
pub fn is_text(name: &str) -> bool {
    matches!(name, "csv" | "text" | "json" | "html" | "xml")
}

/// The offset of the first NUL byte in the file, if any. Text with a NUL is
/// binary data behind a text-looking head (e.g. a CSV header over a NUL
/// flood), so the whole file is read, not only the head that was sniffed.
pub fn first_nul(path: &Path) -> std::io::Result<Option<u64>> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 256 << 10];
    let mut offset = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = buf[..n].iter().position(|b| *b == 0) {
            return Ok(Some(offset + i as u64));
        }
        offset += n as u64;
    }
}

/// Parses and checks a list of type names: each must be known; duplicates
/// are dropped, the order kept.
pub fn known_types(list: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for t in list {
        let t = t.trim().to_ascii_lowercase();
        if !TYPES.contains(&t.as_str()) {
            return Err(format!(
                "unknown type {t:?}; the types are {}",
                TYPES.join(", ")
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::sniff;

    #[test]
    fn names_of_sniffed_types() {
        let elf = std::fs::read("/bin/true").unwrap();
        assert_eq!(of_mime(sniff(&elf[..4096])), "executable");
        assert_eq!(of_mime(sniff(b"MZ\x90\0\x03\0\0\0")), "executable");
        assert_eq!(of_mime(sniff(b"GIF89a\x01\0")), "gif");
        assert_eq!(of_mime(sniff(b"\0asm\x01\0\0\0")), "executable");
        assert_eq!(of_mime(sniff(b"%PDF-1.7\n")), "pdf");
        assert_eq!(of_mime(sniff(b"a,b\n1,2\n3,4\n")), "csv");
        assert_eq!(
            of_mime(sniff(b"#!/usr/bin/env python3\nprint(1)\n")),
            "text"
        );
        assert_eq!(of_mime(sniff(b"\x1f\x8b\x08\0\0\0\0\0")), "archive");
        assert_eq!(of_mime(sniff(b"a,b\0\0\0\0")), "octet-stream");
        assert_eq!(of_mime(sniff(b"")), "empty");
        for t in DEFAULT_ALLOWED {
            assert!(TYPES.contains(t), "{t}");
        }
    }

    #[test]
    fn type_lists() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            known_types(&l(&["PDF", "csv", "pdf"])).unwrap(),
            l(&["pdf", "csv"])
        );
        assert!(known_types(&l(&["exe"])).unwrap_err().contains("\"exe\""));
    }

    #[test]
    fn nul_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = b"a,b\n".repeat(100_000);
        std::fs::write(&p, &data).unwrap();
        assert_eq!(first_nul(&p).unwrap(), None);
        data[300_000] = 0;
        std::fs::write(&p, &data).unwrap();
        assert_eq!(first_nul(&p).unwrap(), Some(300_000));
    }
}

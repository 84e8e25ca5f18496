//! Zip-based uploads (XLSX, DOCX, PPTX, plain zip): which of them a file
//! is (from its entries, since `infer` only recognises office files whose
//! markers happen to be in the first bytes), and whether inflating it would
//! be safe. Bombs are refused on what the central directory declares, then
//! every entry is inflated with a hard cap, since declarations can lie.
//!
//! Archives inside the archive are not opened: Warden never inflates them,
//! so a nested bomb is only data to the sandbox that reads it, bounded there
//! by its own disk and memory limits.

use super::kinds::{DOCX, PPTX, XLSX};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use zip::ZipArchive;

/// The configured limits (`[uploads]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_total: u64,
    pub max_ratio: u64,
    pub ratio_min: u64,
}

/// Why an archive was refused: the limit (as configured) and the story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub limit: &'static str,
    pub message: String,
}

fn refused(limit: &'static str, message: String) -> Refused {
    Refused { limit, message }
}

/// A local file header or an empty archive's end record.
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

pub enum Opened {
    /// What it is (type name and MIME type), and the archive to verify.
    Zip(&'static str, &'static str, Box<ZipArchive<File>>),
    /// Looks like a zip but cannot be read as one.
    Damaged(String),
}

/// Opens the archive after checking the entry count its end record declares
/// (the zip crate reads every central directory entry into memory, so the
/// count is checked before it does).
pub fn open(path: &Path, limits: &Limits) -> Result<Opened, Refused> {
    let damaged = |e: &dyn std::fmt::Display| Ok(Opened::Damaged(e.to_string()));
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return damaged(&e),
    };
    match declared_entries(&mut f) {
        Ok(Some(n)) if n > limits.max_entries => {
            return Err(refused(
                "max_zip_entries",
                format!(
                    "the archive has {n} entries; at most {} are accepted",
                    limits.max_entries
                ),
            ))
        }
        Ok(Some(_)) => {}
        Ok(None) => return damaged(&"no end of central directory record"),
        Err(e) => return damaged(&e),
    }
    let zip = match ZipArchive::new(f) {
        Ok(z) => z,
        Err(e) => return damaged(&e),
    };
    let has = |name: &str| zip.index_for_name(name).is_some();
    let (name, mime) = if has("xl/workbook.xml") {
        ("xlsx", XLSX)
    } else if has("word/document.xml") {
        ("docx", DOCX)
    } else if has("ppt/presentation.xml") {
        ("pptx", PPTX)
    } else {
        ("zip", "application/zip")
    };
    Ok(Opened::Zip(name, mime, Box::new(zip)))
}

/// Refuses an archive whose declared sizes pass the limits, then inflates
/// every entry, each capped one byte past its declared size: an entry that
/// gives more lies about its size (the classic way past checks that read
/// only the directory), and a damaged one fails its CRC.
pub fn verify(zip: &mut ZipArchive<File>, limits: &Limits) -> Result<(), Refused> {
    let mut total = 0u64;
    for i in 0..zip.len() {
        let e = zip
            .by_index_raw(i)
            .map_err(|e| refused("unreadable", format!("entry {i}: {e}")))?;
        let (size, packed) = (e.size(), e.compressed_size());
        total = total.saturating_add(size);
        if total > limits.max_total {
            return Err(refused(
                "max_zip_uncompressed_bytes",
                format!(
                    "the archive inflates to more than {} bytes (entry {:?} alone declares {size})",
                    limits.max_total,
                    e.name()
                ),
            ));
        }
        if size >= limits.ratio_min && size / packed.max(1) > limits.max_ratio {
            return Err(refused(
                "max_zip_ratio",
                format!(
                    "entry {:?} inflates {packed} bytes to {size} ({}:1); at most {}:1 is accepted",
                    e.name(),
                    size / packed.max(1),
                    limits.max_ratio
                ),
            ));
        }
    }
    for i in 0..zip.len() {
        let mut e = zip
            .by_index(i)
            .map_err(|e| refused("unreadable", format!("entry {i}: {e}")))?;
        let declared = e.size();
        let name = e.name().to_string();
        let got = io::copy(
            &mut (&mut e).take(declared.saturating_add(1)),
            &mut io::sink(),
        )
        .map_err(|err| refused("unreadable", format!("entry {name:?}: {err}")))?;
        if got > declared {
            return Err(refused(
                "declared_size",
                format!("entry {name:?} inflates past the {declared} bytes it declares"),
            ));
        }
    }
    Ok(())
}

/// A file that does not start as a zip but ends with a readable one (a
/// zip appended to a PDF, a self-extracting archive): zip readers open it
/// all the same, so it passes the same limits whatever its sniffed type.
/// A stray end-record signature inside other data (a PDF's compressed
/// streams can hold one) is not a zip the reader can open, and passes.
pub fn verify_embedded(path: &Path, limits: &Limits) -> Result<(), Refused> {
    let unreadable = |e: io::Error| refused("unreadable", e.to_string());
    let mut f = File::open(path).map_err(unreadable)?;
    if declared_entries(&mut f).map_err(unreadable)?.is_none() {
        return Ok(());
    }
    let Ok(mut zip) = ZipArchive::new(f) else {
        return Ok(());
    };
    if zip.len() as u64 > limits.max_entries {
        return Err(refused(
            "max_zip_entries",
            format!(
                "the zip archive inside the file has {} entries; at most {} are accepted",
                zip.len(),
                limits.max_entries
            ),
        ));
    }
    verify(&mut zip, limits)
}

/// The total entry count in the end of central directory record (or its
/// zip64 form); None when there is no such record.
fn declared_entries(f: &mut File) -> io::Result<Option<u64>> {
    const EOCD: &[u8] = b"PK\x05\x06";
    let len = f.seek(SeekFrom::End(0))?;
    // The record is 22 bytes plus a comment of at most 65535.
    let tail_len = len.min(22 + 65_535);
    let start = len - tail_len;
    f.seek(SeekFrom::Start(start))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(EOCD))
    else {
        return Ok(None);
    };
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let count = u16_at(&tail, at + 10);
    if count != u16::MAX {
        return Ok(Some(u64::from(count)));
    }
    // Zip64: a 20-byte locator just before the record points at the zip64
    // record, whose total count is a u64 at offset 32.
    let loc = start + at as u64;
    if loc < 20 {
        return Ok(None);
    }
    let mut locator = [0u8; 20];
    f.seek(SeekFrom::Start(loc - 20))?;
    f.read_exact(&mut locator)?;
    if &locator[..4] != b"PK\x06\x07" {
        return Ok(None);
    }
    let mut off = [0u8; 8];
    off.copy_from_slice(&locator[8..16]);
    let mut rec = [0u8; 40];
    f.seek(SeekFrom::Start(u64::from_le_bytes(off)))?;
    if f.read_exact(&mut rec).is_err() || &rec[..4] != b"PK\x06\x06" {
        return Ok(None);
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&rec[32..40]);
    Ok(Some(u64::from_le_bytes(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    const LIMITS: Limits = Limits {
        max_entries: 10,
        max_total: 1 << 20,
        max_ratio: 100,
        ratio_min: 64 << 10,
    };

    fn write_zip(path: &Path, entries: &[(&str, Vec<u8>)]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
    }

    fn check(entries: &[(&str, Vec<u8>)]) -> Result<&'static str, Refused> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.zip");
        write_zip(&p, entries);
        match open(&p, &LIMITS)? {
            Opened::Zip(name, _, mut zip) => verify(&mut zip, &LIMITS).map(|()| name),
            Opened::Damaged(why) => panic!("damaged: {why}"),
        }
    }

    #[test]
    fn kinds_and_limits() {
        let xml = || b"<x/>".to_vec();
        assert_eq!(check(&[("xl/workbook.xml", xml())]), Ok("xlsx"));
        assert_eq!(check(&[("word/document.xml", xml())]), Ok("docx"));
        assert_eq!(check(&[("a.txt", xml())]), Ok("zip"));
        let many: Vec<(String, Vec<u8>)> = (0..11).map(|i| (format!("{i}"), xml())).collect();
        let many: Vec<(&str, Vec<u8>)> =
            many.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        assert_eq!(check(&many).unwrap_err().limit, "max_zip_entries");
        let zeros = vec![0u8; 512 << 10];
        assert_eq!(
            check(&[("z", zeros.clone())]).unwrap_err().limit,
            "max_zip_ratio"
        );
        // Incompressible (xorshift), so only the total can refuse it.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..600 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let two = [("a", noise.clone()), ("b", noise)];
        assert_eq!(check(&two).unwrap_err().limit, "max_zip_uncompressed_bytes");
    }

    #[test]
    fn a_zip_behind_another_type_is_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        let (bomb, plain) = (dir.path().join("b.zip"), dir.path().join("p.zip"));
        write_zip(&bomb, &[("z", vec![0u8; 512 << 10])]);
        write_zip(&plain, &[("a.txt", b"<x/>".to_vec())]);
        let pdf = |zip: &Path, out: &str| {
            let mut bytes = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec();
            bytes.extend(std::fs::read(zip).unwrap());
            let p = dir.path().join(out);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let limit = |p: &Path| verify_embedded(p, &LIMITS).map_err(|r| r.limit);
        assert_eq!(limit(&pdf(&bomb, "bomb.pdf")), Err("max_zip_ratio"));
        // Controls: a harmless appended zip, no zip, a stray signature.
        assert_eq!(limit(&pdf(&plain, "fine.pdf")), Ok(()));
        let bare = dir.path().join("bare.pdf");
        std::fs::write(&bare, b"%PDF-1.7\nno archive here\n").unwrap();
        assert_eq!(limit(&bare), Ok(()));
        let stray = dir.path().join("stray.pdf");
        let mut bytes = b"%PDF-1.7\nstream\n".to_vec();
        bytes.extend(b"PK\x05\x06\xff\xff\xff\xff\x10\x00\x10\x00junkjunkjunkjunk");
        std::fs::write(&stray, bytes).unwrap();
        assert_eq!(limit(&stray), Ok(()));
    }

    #[test]
    fn not_a_zip_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.zip");
        std::fs::write(&p, b"PK\x03\x04 and then nothing of a zip").unwrap();
        assert!(matches!(open(&p, &LIMITS), Ok(Opened::Damaged(_))));
    }
}

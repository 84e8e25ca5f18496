//! Upload names and content types: names are checked, never used as storage
//! keys; types come from the bytes, never from the name or the request.

/// Longest accepted file name, in bytes.
pub const MAX_NAME: usize = 255;

pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the file name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("the file name is longer than {MAX_NAME} bytes"));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a file name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == '\\' || c.is_control())
    {
        return Err(format!(
            "the file name contains {c:?}, which names may not contain"
        ));
    }
    Ok(())
}

/// The MIME type the first bytes of a file say it has.
pub fn sniff(head: &[u8]) -> &'static str {
    if head.is_empty() {
        return "application/x-empty";
    }
    if let Some(t) = infer::get(head) {
        return t.mime_type();
    }
    if let Some(text) = as_text(head) {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && serde_json::from_str::<serde_json::Value>(text).is_ok()
        {
            return "application/json";
        }
        if looks_like_csv(text) {
            return "text/csv";
        }
        return "text/plain";
    }
    "application/octet-stream"
}

/// The head as text, if it is UTF-8 (a character cut at the end of the
/// head is fine) with no NUL and few control characters.
fn as_text(head: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let odd = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
        .count();
    (!text.contains('\0') && odd * 100 <= text.len()).then_some(text)
}

/// Two or more complete lines with the same, non-zero number of commas (or
/// semicolons or tabs).
fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().take(20).collect();
    // The last line of the head may be cut short.
    let full = if lines.len() > 2 {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    if full.len() < 2 {
        return false;
    }
    [',', ';', '\t'].iter().any(|sep| {
        let n = full[0].matches(*sep).count();
        n > 0 && full.iter().all(|l| l.matches(*sep).count() == n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("report 2026.pdf").is_ok());
        assert!(check_name("données.csv").is_ok());
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b", "a\nb", "\x1b[31m"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn types_come_from_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3"), "application/pdf");
        assert_eq!(sniff(b"a,b,c\n1,2,3\n4,5,6\n"), "text/csv");
        assert_eq!(sniff(b"hello world\n"), "text/plain");
        assert_eq!(sniff(b"{\"a\": 1}"), "application/json");
        let elf = std::fs::read("/bin/true").unwrap();
        assert_eq!(sniff(&elf[..8192]), "application/x-executable");
        assert_eq!(sniff(b"PK\x03\x04\x14\0\0\0"), "application/zip");
        assert_eq!(sniff(b"a,b\0\0\0\0\0\0\0"), "application/octet-stream");
        assert_eq!(sniff(b""), "application/x-empty");
    }
}

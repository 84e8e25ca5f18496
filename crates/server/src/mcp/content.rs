//! A file's bytes as what a model can take in: text (bounded), an image
//! it can look at, or a note that the file is binary and how to look
//! inside it instead.

use super::text::bounded;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rmcp::model::ContentBlock;

/// The most of a text file shown (its start and end when longer).
pub const TEXT_MAX: usize = 64 << 10;
/// The most bytes read of a file: an image up to this size is shown.
pub const READ_MAX: usize = 2 << 20;

/// `bytes` are the first bytes of the file at `path` (all of it unless
/// `cut`), `size` its whole size.
pub fn of_file(path: &str, size: u64, bytes: &[u8], cut: bool) -> Vec<ContentBlock> {
    if let Some(kind) = infer::get(bytes) {
        let mime = kind.mime_type();
        if matches!(
            mime,
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        ) {
            if cut {
                return vec![ContentBlock::text(format!(
                    "{path}: {mime}, {size} bytes, larger than the {} MiB shown as an image; \
                     make a smaller copy with run_command or run_code first",
                    READ_MAX >> 20
                ))];
            }
            return vec![
                ContentBlock::text(format!("{path}: {mime}, {size} bytes")),
                ContentBlock::image(B64.encode(bytes), mime),
            ];
        }
    }
    match as_text(bytes, cut) {
        Some(text) if cut => {
            let shown = &text[..floor(text, TEXT_MAX)];
            vec![ContentBlock::text(format!(
                "[{path}: the first {} of {size} bytes; read other parts with run_command, \
                 e.g. sed -n '1000,1100p' or tail]\n{shown}",
                shown.len()
            ))]
        }
        Some(text) => vec![ContentBlock::text(bounded(text, TEXT_MAX))],
        None => {
            let what = infer::get(bytes).map_or("binary data", |k| k.mime_type());
            vec![ContentBlock::text(format!(
                "{path}: {what}, {size} bytes, not text; inspect it with run_command \
                 (file, xxd, python) or run_code"
            ))]
        }
    }
}

/// The bytes as UTF-8; a piece cut off at the end of a read is allowed.
fn as_text(bytes: &[u8], cut: bool) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s),
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

fn floor(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(blocks: &[ContentBlock]) -> String {
        blocks
            .iter()
            .filter_map(|b| b.as_text().map(|t| t.text.clone()))
            .collect()
    }

    #[test]
    fn text_is_shown() {
        let b = of_file("/a.txt", 5, b"hello", false);
        assert_eq!(text_of(&b), "hello");
    }

    #[test]
    fn a_png_is_an_image() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let b = of_file("/a.png", png.len() as u64, png, false);
        assert_eq!(b.len(), 2);
        assert!(b[1].as_image().is_some());
    }

    #[test]
    fn binary_is_described_not_shown() {
        let b = of_file("/x", 4, b"\xff\xfe\x00\x01", false);
        let t = text_of(&b);
        assert!(t.contains("not text"), "{t}");
    }

    #[test]
    fn a_cut_text_says_so_and_a_split_character_is_dropped() {
        let mut bytes = "é".repeat(10).into_bytes();
        bytes.pop();
        let t = text_of(&of_file("/a", 100, &bytes, true));
        assert!(t.starts_with("[/a: the first 18 of 100 bytes"), "{t}");
    }
}

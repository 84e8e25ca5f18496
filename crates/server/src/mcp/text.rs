//! Output sized for a model's context: a long text keeps its start and its
//! end (where a command's errors and summary usually are), with a note of
//! how much was left out between them.

/// At most about `max` bytes of `s`, cut at character boundaries.
pub fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let head = floor(s, max / 4);
    let tail = ceil(s, s.len() - (max - max / 4));
    format!(
        "{}\n[... {} bytes left out ...]\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(bounded("hello", 10), "hello");
    }

    #[test]
    fn long_text_keeps_its_start_and_end() {
        let s: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let b = bounded(&s, 400);
        assert!(b.starts_with("line 0\n"), "{b}");
        assert!(b.ends_with("line 999\n"), "{b}");
        assert!(b.contains("bytes left out"), "{b}");
        assert!(b.len() < 460, "{}", b.len());
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let s = "é".repeat(500);
        let b = bounded(&s, 101);
        assert!(b.contains("left out"));
        assert!(b.starts_with('é') && b.ends_with('é'));
    }
}

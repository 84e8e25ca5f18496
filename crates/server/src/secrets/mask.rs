//! Masking of secret values in what a sandbox prints, as it streams.
//!
//! A value may arrive split across chunks, so a stream holds back the
//! longest tail of what it has seen that could still grow into a value (a
//! proper prefix of one) and releases it once the next chunk settles it, or
//! at the end. Nothing else is delayed, so interactive output stays live.
//!
//! Best effort against accidental leaks (a program that echoes its
//! environment): a program that encodes, splits or reverses a value is not
//! caught, and cannot be by any filter.

use aho_corasick::{AhoCorasick, MatchKind};
use std::sync::Arc;
use zeroize::Zeroizing;

/// What a value is replaced with. It does not say which secret it was.
pub const MASK: &[u8] = b"***";

/// The values of one sandbox's secrets.
pub struct Masker {
    matcher: AhoCorasick,
    /// The same values, ASCII case ignored: for text Warden normalises
    /// before keeping it (host names in the egress log are lower-cased).
    matcher_ci: AhoCorasick,
    /// Each value with its KMP failure table, to find the held-back tail.
    values: Vec<(Zeroizing<Vec<u8>>, Vec<usize>)>,
}

impl Masker {
    /// None when there is nothing to mask.
    pub fn new(values: Vec<Zeroizing<Vec<u8>>>) -> Option<Arc<Masker>> {
        let values: Vec<_> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return None;
        }
        // Leftmost-longest: of two values starting at one place the longer
        // is masked whole, never a shorter one with the rest left showing.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(values.iter().map(|v| v.as_slice()))
            .ok()?;
        let matcher_ci = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(values.iter().map(|v| v.as_slice()))
            .ok()?;
        let values = values
            .into_iter()
            .map(|v| {
                let fail = failure(&v);
                (v, fail)
            })
            .collect();
        Some(Arc::new(Masker {
            matcher,
            matcher_ci,
            values,
        }))
    }

    /// Masks every value in a whole piece of text, ignoring ASCII case (for
    /// fields a sandbox chose and Warden keeps, such as the host names and
    /// methods in its egress log).
    pub fn mask_text(&self, text: &str) -> String {
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for m in self.matcher_ci.find_iter(text.as_bytes()) {
            out.extend_from_slice(&text.as_bytes()[at..m.start()]);
            out.extend_from_slice(MASK);
            at = m.end();
        }
        out.extend_from_slice(&text.as_bytes()[at..]);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Length of the longest suffix of `buf` that is a proper prefix of
    /// some value: the bytes that must wait for more input. Linear in the
    /// values' total length, whatever the output holds.
    fn pending_len(&self, buf: &[u8]) -> usize {
        self.values
            .iter()
            .map(|(v, fail)| {
                // The suffix is shorter than the value, so only the last
                // len-1 bytes can take part: run KMP over those.
                let tail = &buf[buf.len().saturating_sub(v.len() - 1)..];
                let mut k = 0;
                for &b in tail {
                    while k > 0 && v[k] != b {
                        k = fail[k - 1];
                    }
                    if v[k] == b {
                        k += 1;
                    }
                }
                k
            })
            .max()
            .unwrap_or(0)
    }

    /// Masks every value in `buf`, appending to `out`; returns how far the
    /// matches reached (a match may end past `limit`, none starts at or
    /// after it).
    fn mask_into(&self, buf: &[u8], limit: usize, out: &mut Vec<u8>) -> usize {
        let mut at = 0;
        for m in self.matcher.find_iter(buf) {
            if m.start() >= limit {
                break;
            }
            out.extend_from_slice(&buf[at..m.start()]);
            out.extend_from_slice(MASK);
            at = m.end();
        }
        let upto = limit.max(at);
        out.extend_from_slice(&buf[at..upto]);
        upto
    }
}

/// KMP failure table: `fail[i]` is the length of the longest proper prefix
/// of `v[..=i]` that is also its suffix.
fn failure(v: &[u8]) -> Vec<usize> {
    let mut fail = vec![0; v.len()];
    let mut k = 0;
    for i in 1..v.len() {
        while k > 0 && v[i] != v[k] {
            k = fail[k - 1];
        }
        if v[i] == v[k] {
            k += 1;
        }
        fail[i] = k;
    }
    fail
}

/// One output stream (stdout or stderr) being masked. Without a masker it
/// passes everything through.
#[derive(Default)]
pub struct MaskStream {
    masker: Option<Arc<Masker>>,
    held: Zeroizing<Vec<u8>>,
}

impl MaskStream {
    pub fn new(masker: Option<Arc<Masker>>) -> MaskStream {
        MaskStream {
            masker,
            held: Zeroizing::default(),
        }
    }

    /// Takes the next chunk; returns what can be released now (possibly
    /// nothing).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let Some(m) = &self.masker else {
            return chunk.to_vec();
        };
        self.held.extend_from_slice(chunk);
        let buf = std::mem::take(&mut *self.held);
        let buf = Zeroizing::new(buf);
        let keep = m.pending_len(&buf);
        let mut out = Vec::with_capacity(buf.len());
        let released = m.mask_into(&buf, buf.len() - keep, &mut out);
        self.held.extend_from_slice(&buf[released..]);
        out
    }

    /// The end of the stream: releases what was held back, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = Zeroizing::new(std::mem::take(&mut *self.held));
        match &self.masker {
            Some(m) => {
                let mut out = Vec::with_capacity(buf.len());
                m.mask_into(&buf, buf.len(), &mut out);
                out
            }
            None => buf.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Arc<Masker> {
        Masker::new(
            values
                .iter()
                .map(|v| Zeroizing::new(v.as_bytes().to_vec()))
                .collect(),
        )
        .unwrap()
    }

    /// Feeds `chunks` and returns everything released, in order.
    fn run(m: &Arc<Masker>, chunks: &[&[u8]]) -> String {
        let mut s = MaskStream::new(Some(m.clone()));
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.push(c));
        }
        out.extend(s.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_masked_whatever_its_case() {
        let m = masker(&["Sk-AbCdEf12"]);
        assert_eq!(m.mask_text("sk-abcdef12.evil.test"), "***.evil.test");
        assert_eq!(m.mask_text("SK-ABCDEF12"), "***");
        assert_eq!(m.mask_text("sk-abcdef1"), "sk-abcdef1");
    }

    #[test]
    fn whole_values_are_masked() {
        let m = masker(&["sk-12345678"]);
        assert_eq!(run(&m, &[b"key=sk-12345678\n"]), "key=***\n");
        assert_eq!(run(&m, &[b"sk-12345678sk-12345678"]), "******");
        assert_eq!(run(&m, &[b"sk-1234567 sk-1234"]), "sk-1234567 sk-1234");
        assert_eq!(run(&m, &[b""]), "");
    }

    #[test]
    fn a_value_split_at_every_boundary_is_masked() {
        let m = masker(&["SECRET-value-42", "another-one!"]);
        let text = b"a SECRET-value-42 b another-one! c SECRET-value-4 d";
        let want = "a *** b *** c SECRET-value-4 d";
        for i in 0..=text.len() {
            assert_eq!(run(&m, &[&text[..i], &text[i..]]), want, "split at {i}");
            for j in i..=text.len() {
                assert_eq!(
                    run(&m, &[&text[..i], &text[i..j], &text[j..]]),
                    want,
                    "split at {i} and {j}"
                );
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(run(&m, &bytes), want);
    }

    #[test]
    fn only_a_possible_prefix_is_held_back() {
        let m = masker(&["abcdefgh"]);
        let mut s = MaskStream::new(Some(m));
        assert_eq!(s.push(b"hello abc"), b"hello ");
        assert_eq!(s.push(b"dx"), b"abcdx");
        assert_eq!(s.push(b"zzz"), b"zzz");
        // A prefix that restarts inside itself ("aab..." in "aaab...").
        let m = masker(&["aabaac"]);
        assert_eq!(run(&m, &[b"xaaba", b"aabaac"]), "xaaba***");
        let mut s = MaskStream::new(Some(m));
        assert_eq!(s.push(b"aabaa"), b"");
        assert_eq!(s.push(b"b"), b"aab");
        assert_eq!(s.finish(), b"aab");
    }

    #[test]
    fn overlapping_values_mask_the_longest() {
        let m = masker(&["token-abc", "token-abcdef", "cdef-xyz1"]);
        assert_eq!(run(&m, &[b"[token-abcdef]"]), "[***]");
        assert_eq!(run(&m, &[b"[token-abc", b"def]"]), "[***]");
        assert_eq!(run(&m, &[b"[token-abc]"]), "[***]");
        // Ends as the shorter one: released at the end of the stream.
        assert_eq!(run(&m, &[b"[token-abc"]), "[***");
        assert_eq!(run(&m, &[b"cdef-xy", b"z1"]), "***");
        // A value inside the held-back prefix of a longer one.
        let m = masker(&["ABCD1234", "CD12"]);
        assert_eq!(run(&m, &[b"xABCD12"]), "xAB***");
        assert_eq!(run(&m, &[b"xABCD12", b"34"]), "x***");
        assert_eq!(run(&m, &[b"xABCD12", b"3y"]), "xAB***3y");
    }

    #[test]
    fn without_a_masker_everything_passes() {
        assert!(Masker::new(vec![]).is_none());
        let mut s = MaskStream::new(None);
        assert_eq!(s.push(b"abc"), b"abc");
        assert_eq!(s.finish(), b"");
    }

    #[test]
    fn held_back_bytes_stay_bounded() {
        let m = masker(&["xxxxxxxxxxy"]);
        let mut s = MaskStream::new(Some(m));
        let mut out = Vec::new();
        for _ in 0..1000 {
            out.extend(s.push(b"xxxxxxx"));
            assert!(s.held.len() < 11);
        }
        out.extend(s.finish());
        assert_eq!(out.len(), 7000);
    }
}

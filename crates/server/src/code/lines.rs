//! The interpreter's `/execute` answer read line by line (newline-delimited
//! JSON), holding at most one line; and its strings masked. What `/v1`'s
//! collected and streamed runs share (`routes::code`, `routes::code_stream`).

use crate::secrets::Masker;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

/// One piece of the answer.
pub enum Line {
    /// A whole line, its newline included (the last one may lack it).
    Whole(Vec<u8>),
    /// A line grew past the reader's bound; what was read of it is gone.
    TooLong,
}

pub struct Lines {
    body: Incoming,
    pending: Vec<u8>,
    max: usize,
    done: bool,
}

impl Lines {
    /// Reads `body`, holding at most `max` bytes of a line.
    pub fn new(body: Incoming, max: usize) -> Lines {
        Lines {
            body,
            pending: Vec::new(),
            max,
            done: false,
        }
    }

    /// The next line; `None` at the end; an error when the body broke.
    pub async fn next(&mut self) -> Result<Option<Line>, hyper::Error> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                return Ok(Some(Line::Whole(self.pending.drain(..=end).collect())));
            }
            if self.done {
                let rest = std::mem::take(&mut self.pending);
                return Ok((!rest.is_empty()).then_some(Line::Whole(rest)));
            }
            if self.pending.len() > self.max {
                self.pending.clear();
                return Ok(Some(Line::TooLong));
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.pending.extend_from_slice(&data);
                    }
                }
                None => self.done = true,
            }
        }
    }
}

/// Masks secret values in every string of `v`.
pub fn mask_strings(v: &mut Value, m: &Masker) {
    match v {
        Value::String(s) => *s = m.mask_text(s),
        Value::Array(a) => a.iter_mut().for_each(|x| mask_strings(x, m)),
        Value::Object(o) => o.values_mut().for_each(|x| mask_strings(x, m)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn secrets_are_masked_in_every_string_however_deep() {
        let m = Masker::new(vec![Zeroizing::new(b"s3cr3t-value".to_vec())]).unwrap();
        let mut v = serde_json::json!({
            "type": "result",
            "text": "token=s3cr3t-value",
            "json": {"nested": ["s3cr3t-value", 1]},
            "extra": {"text/x-custom": "at s3cr3t-value end"},
        });
        mask_strings(&mut v, &m);
        let shown = v.to_string();
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert_eq!(v["json"]["nested"][1], 1);
    }
}

//! `run_command`'s output, read as `/v1` streams it (SSE) so that however
//! much a command prints, what the model gets is the start and the end of
//! each stream (a build's error is usually at the end), and what is held
//! meanwhile is bounded: a head, a ring for the tail, and one SSE line.

use super::v1::{api_error, Call, V1Error, V1};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::StreamExt;
use serde_json::Value;
use std::collections::VecDeque;

/// The most bytes of one SSE line (an output chunk in base64 is far less).
const LINE_MAX: usize = 4 << 20;

/// The first `head_max` and last `tail_max` bytes of a stream.
pub struct Kept {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_max: usize,
    tail_max: usize,
    total: u64,
}

impl Kept {
    pub fn new(max: usize) -> Kept {
        Kept {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_max: max / 4,
            tail_max: max - max / 4,
            total: 0,
        }
    }

    pub fn push(&mut self, mut d: &[u8]) {
        self.total += d.len() as u64;
        let room = self.head_max - self.head.len();
        let n = room.min(d.len());
        self.head.extend_from_slice(&d[..n]);
        d = &d[n..];
        if d.len() >= self.tail_max {
            self.tail.clear();
            d = &d[d.len() - self.tail_max..];
        }
        let over = (self.tail.len() + d.len()).saturating_sub(self.tail_max);
        self.tail.drain(..over);
        self.tail.extend(d);
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The text: whole when it fit, else its start, a note, and its end.
    pub fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        if kept == self.total {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        format!(
            "{}\n[... {} bytes left out ...]\n{}",
            String::from_utf8_lossy(&self.head),
            self.total - kept,
            String::from_utf8_lossy(&tail)
        )
    }
}

/// How a command ended.
pub struct Ended {
    pub exit: Option<Value>,
    pub stdout: Kept,
    pub stderr: Kept,
    /// The exec's own error (`code`, `message`) after it was accepted.
    pub error: Option<(String, String)>,
}

/// Starts the exec described by `body` in `sandbox` and reads it to its end.
pub async fn run(v1: &dyn V1, path: String, body: &Value, max: usize) -> Result<Ended, V1Error> {
    let mut call = Call::json(axum::http::Method::POST, path, body);
    call.accept = Some("text/event-stream");
    let mut opened = v1.open(call).await?;
    if !opened.status.is_success() {
        let mut err = Vec::new();
        while let Some(d) = opened.body.next().await {
            let d = d?;
            if err.len() < 64 << 10 {
                err.extend_from_slice(&d);
            }
        }
        return Err(api_error(opened.status, &err));
    }
    let mut ended = Ended {
        exit: None,
        stdout: Kept::new(max),
        stderr: Kept::new(max),
        error: None,
    };
    let mut line = Vec::new();
    let (mut event, mut data) = (String::new(), String::new());
    while let Some(chunk) = opened.body.next().await {
        for &b in chunk?.iter() {
            if b != b'\n' {
                if line.len() >= LINE_MAX {
                    return Err(V1Error::Transport(
                        "an event of the exec stream is too long".into(),
                    ));
                }
                line.push(b);
                continue;
            }
            let l = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            let l = l.strip_suffix('\r').unwrap_or(&l);
            if let Some(v) = l.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if l.is_empty() && !event.is_empty() {
                dispatch(&mut ended, &event, &data);
                event.clear();
                data.clear();
            }
        }
    }
    Ok(ended)
}

fn dispatch(ended: &mut Ended, event: &str, data: &str) {
    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let bytes = || {
        B64.decode(v["data"].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    match event {
        "stdout" => ended.stdout.push(&bytes()),
        "stderr" => ended.stderr.push(&bytes()),
        "exit" => ended.exit = Some(v),
        "error" => {
            ended.error = Some((
                v["code"].as_str().unwrap_or("error").to_string(),
                v["message"].as_str().unwrap_or_default().to_string(),
            ))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::Kept;

    #[test]
    fn short_output_is_kept_whole() {
        let mut k = Kept::new(100);
        k.push(b"hello ");
        k.push(b"world");
        assert_eq!(k.render(), "hello world");
    }

    #[test]
    fn long_output_keeps_start_and_end_in_bounded_memory() {
        let mut k = Kept::new(100);
        for i in 0..10_000 {
            k.push(format!("{i}\n").as_bytes());
        }
        let r = k.render();
        assert!(r.starts_with("0\n1\n2\n"), "{r}");
        assert!(r.ends_with("9998\n9999\n"), "{r}");
        assert!(r.contains("bytes left out"), "{r}");
        assert!(k.head.len() <= 25 && k.tail.len() <= 75);
    }

    #[test]
    fn one_huge_chunk_keeps_its_end() {
        let mut k = Kept::new(8);
        k.push(b"abcdefghijklmnopqrstuvwxyz");
        let r = k.render();
        assert!(r.starts_with("ab\n") && r.ends_with("\nuvwxyz"), "{r}");
    }
}

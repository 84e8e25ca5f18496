//! The exec event stream, one event at a time, and how a command's end
//! maps to this process's exit status: its exit code; 128+N for a signal
//! N; 124 when it timed out; 127 / 126 when it cannot be found / executed.

use super::parse::one_line;
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;

const TIMEOUT: i32 = 124;
const CANNOT_EXECUTE: i32 = 126;
const NOT_FOUND: i32 = 127;

/// How a command ended: the `exit` event, or the JSON answer's fields.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Exit {
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub signal: Option<Signal>,
    #[serde(default)]
    pub timed_out: bool,
}

/// A signal as a number, or as a name (`KILL`, `SIGKILL`).
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Signal {
    Number(i64),
    Name(String),
}

impl Signal {
    fn number(&self) -> Option<i64> {
        match self {
            Signal::Number(n) => Some(*n),
            Signal::Name(s) => {
                let s = s.trim();
                if let Ok(n) = s.parse() {
                    return Some(n);
                }
                let s = s.strip_prefix("SIG").unwrap_or(s);
                let n = match s.to_ascii_uppercase().as_str() {
                    "HUP" => libc::SIGHUP,
                    "INT" => libc::SIGINT,
                    "QUIT" => libc::SIGQUIT,
                    "ILL" => libc::SIGILL,
                    "TRAP" => libc::SIGTRAP,
                    "ABRT" => libc::SIGABRT,
                    "BUS" => libc::SIGBUS,
                    "FPE" => libc::SIGFPE,
                    "KILL" => libc::SIGKILL,
                    "USR1" => libc::SIGUSR1,
                    "SEGV" => libc::SIGSEGV,
                    "USR2" => libc::SIGUSR2,
                    "PIPE" => libc::SIGPIPE,
                    "ALRM" => libc::SIGALRM,
                    "TERM" => libc::SIGTERM,
                    "XCPU" => libc::SIGXCPU,
                    "XFSZ" => libc::SIGXFSZ,
                    "SYS" => libc::SIGSYS,
                    _ => return None,
                };
                Some(i64::from(n))
            }
        }
    }
}

/// This process's exit status for how the command ended: 124 when it timed
/// out, 128+N for signal N, else its exit code.
pub fn exit_status(e: &Exit) -> Result<i32> {
    if e.timed_out {
        return Ok(TIMEOUT);
    }
    if let Some(sig) = &e.signal {
        return match sig.number() {
            Some(n) if (1..=127).contains(&n) => Ok(128 + n as i32),
            _ => bail!("the command was killed by an unknown signal {sig:?}"),
        };
    }
    match e.exit_code {
        Some(c) if (0..=255).contains(&c) => Ok(c as i32),
        Some(c) => bail!("the server reported an impossible exit code {c}"),
        None => bail!("the server reported neither an exit code nor a signal"),
    }
}

/// Writes and flushes; a reader that went away is not an error.
fn write_out(w: &mut dyn Write, d: &[u8]) -> Result<()> {
    match w.write_all(d).and_then(|_| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Handles one SSE event; `Some(status)` once the command is over.
pub fn handle_event(
    event: &str,
    data: &str,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Option<i32>> {
    match event {
        "stdout" | "stderr" => {
            #[derive(Deserialize)]
            struct Chunk {
                data: String,
            }
            let chunk: Chunk = serde_json::from_str(data)
                .with_context(|| format!("malformed {event} event from the server"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(chunk.data.as_bytes())
                .with_context(|| format!("malformed base64 in a {event} event"))?;
            if event == "stdout" {
                write_out(stdout, &bytes)?;
            } else {
                write_out(stderr, &bytes)?;
            }
            Ok(None)
        }
        "exit" => {
            let exit: Exit =
                serde_json::from_str(data).context("malformed exit event from the server")?;
            let code = exit_status(&exit)?;
            if exit.timed_out {
                write_out(stderr, b"warden: the command timed out\n")?;
            }
            Ok(Some(code))
        }
        "error" => {
            #[derive(Deserialize)]
            struct Failure {
                code: String,
                #[serde(default)]
                message: String,
            }
            let f: Failure =
                serde_json::from_str(data).context("malformed error event from the server")?;
            let message = one_line(&f.message);
            let code = match f.code.as_str() {
                "not_found" => NOT_FOUND,
                "permission_denied" => CANNOT_EXECUTE,
                _ => bail!("{}: {message}", one_line(&f.code)),
            };
            let text = if message.is_empty() {
                format!("warden: {}\n", f.code)
            } else {
                format!("warden: {message}\n")
            };
            write_out(stderr, text.as_bytes())?;
            Ok(Some(code))
        }
        // `started` and anything newer than this client.
        _ => Ok(None),
    }
}

/// A JSON exec answer (`--json`, or a server that does not stream): prints
/// the captured output when `echo`, returns the status.
pub fn finish_json(v: &Value, echo: bool) -> Result<i32> {
    let exit: Exit =
        serde_json::from_value(v.clone()).context("malformed exec answer from the server")?;
    if echo {
        for (key, w) in [
            ("stdout", &mut std::io::stdout() as &mut dyn Write),
            ("stderr", &mut std::io::stderr()),
        ] {
            if let Some(s) = v.get(key).and_then(Value::as_str) {
                write_out(w, s.as_bytes())?;
            }
        }
        if exit.timed_out {
            write_out(&mut std::io::stderr(), b"warden: the command timed out\n")?;
        }
    }
    exit_status(&exit)
}

#[cfg(test)]
pub(crate) fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exit(v: Value) -> Result<i32> {
        exit_status(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn exit_statuses_follow_the_conventions() {
        assert_eq!(
            exit(json!({"exit_code": 0, "signal": null, "timed_out": false})).unwrap(),
            0
        );
        assert_eq!(exit(json!({"exit_code": 42})).unwrap(), 42);
        assert_eq!(exit(json!({"exit_code": null, "signal": 9})).unwrap(), 137);
        assert_eq!(exit(json!({"signal": "KILL"})).unwrap(), 137);
        assert_eq!(exit(json!({"signal": "SIGTERM"})).unwrap(), 143);
        assert_eq!(exit(json!({"signal": "15"})).unwrap(), 143);
        assert_eq!(
            exit(json!({"exit_code": null, "signal": 9, "timed_out": true})).unwrap(),
            124
        );
        assert_eq!(exit(json!({"exit_code": 127})).unwrap(), 127);
        assert!(exit(json!({"exit_code": 300})).is_err());
        assert!(exit(json!({"exit_code": -1})).is_err());
        assert!(exit(json!({"signal": 0})).is_err());
        assert!(exit(json!({"signal": "NOPE"})).is_err());
        assert!(exit(json!({})).is_err());
    }

    fn events(list: &[(&str, Value)]) -> (Result<Option<i32>>, Vec<u8>, Vec<u8>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for (name, data) in list {
            match handle_event(name, &data.to_string(), &mut out, &mut err) {
                Ok(None) => continue,
                other => return (other, out, err),
            }
        }
        (Ok(None), out, err)
    }

    #[test]
    fn output_events_are_decoded_to_their_streams() {
        let (r, out, err) = events(&[
            ("started", json!({"pid": 7})),
            ("stdout", json!({"data": b64(b"hello\n")})),
            ("stderr", json!({"data": b64(b"oops\n")})),
            ("stdout", json!({"data": b64(&[0xff, 0x00])})),
            ("ping", json!({})),
            (
                "exit",
                json!({"exit_code": 3, "signal": null, "timed_out": false}),
            ),
        ]);
        assert_eq!(r.unwrap(), Some(3));
        assert_eq!(out, b"hello\n\xff\x00");
        assert_eq!(err, b"oops\n");
    }

    #[test]
    fn timeouts_and_exec_failures_map_to_their_codes() {
        let (r, _, err) = events(&[(
            "exit",
            json!({"exit_code": null, "signal": 9, "timed_out": true}),
        )]);
        assert_eq!(r.unwrap(), Some(124));
        assert_eq!(err, b"warden: the command timed out\n");
        let (r, _, err) = events(&[(
            "error",
            json!({"code": "not_found", "message": "nope: command not found"}),
        )]);
        assert_eq!(r.unwrap(), Some(127));
        assert_eq!(err, b"warden: nope: command not found\n");
        let (r, _, _) = events(&[(
            "error",
            json!({"code": "permission_denied", "message": "/etc/passwd"}),
        )]);
        assert_eq!(r.unwrap(), Some(126));
        let (r, _, _) = events(&[("error", json!({"code": "internal", "message": "boom"}))]);
        assert_eq!(r.unwrap_err().to_string(), "internal: boom");
    }

    #[test]
    fn malformed_events_are_errors() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert!(handle_event("stdout", "{}", &mut out, &mut err).is_err());
        assert!(handle_event("stdout", r#"{"data":"!!"}"#, &mut out, &mut err).is_err());
        assert!(handle_event("exit", "nope", &mut out, &mut err).is_err());
    }

    #[test]
    fn json_answers_give_the_same_statuses() {
        let v = json!({"pid": 1, "exit_code": 127, "signal": null, "timed_out": false,
                       "stdout": "", "stderr": "sh: nope: not found\n"});
        assert_eq!(finish_json(&v, false).unwrap(), 127);
    }
}

//! Pure parsing of flag values: `K=V` pairs, labels, durations in whole
//! seconds, sizes in MiB, and squeezing messages onto one line.

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use warden_spec::{parse_duration, parse_size};

/// Parses repeated `K=V` values of `flag` into a map (a later value for the
/// same key wins). The key must be non-empty and may not contain `=`; the
/// value may be empty and may contain `=`.
pub fn key_values(flag: &str, items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("{flag} {item:?} is not K=V"))?;
        if k.is_empty() {
            bail!("{flag} {item:?} has an empty name");
        }
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

/// `--env K=V…`: as [`key_values`], and the name may not hold a NUL.
pub fn env(items: &[String]) -> Result<BTreeMap<String, String>> {
    let map = key_values("--env", items)?;
    if let Some(k) = map.keys().find(|k| k.contains('\0')) {
        bail!("--env {k:?}: the name holds a NUL byte");
    }
    Ok(map)
}

/// `--label k=v…`: as [`key_values`], with keys free of whitespace.
pub fn labels(items: &[String]) -> Result<BTreeMap<String, String>> {
    let map = key_values("--label", items)?;
    if let Some(k) = map.keys().find(|k| k.chars().any(char::is_whitespace)) {
        bail!("--label {k:?}: the name holds whitespace");
    }
    Ok(map)
}

/// `--label k=v` filters, checked and passed on as written.
pub fn label_filters(items: &[String]) -> Result<Vec<String>> {
    labels(items)?;
    Ok(items.to_vec())
}

/// A duration flag (`30s`, `5m`, `1h30m`, a bare number of seconds) as whole
/// seconds, rounding a fraction up; zero is refused.
pub fn duration_secs(flag: &str, s: &str) -> Result<u64> {
    let d = parse_duration(s).map_err(|e| anyhow!("{flag}: {e}"))?;
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs == 0 {
        bail!("{flag} {s:?} must be at least one second");
    }
    Ok(secs)
}

/// A size flag (`512M`, `1G`, `1.5G`) in bytes; zero is refused.
pub fn size_bytes(flag: &str, s: &str) -> Result<u64> {
    let b = parse_size(s).map_err(|e| anyhow!("{flag}: {e}"))?;
    if b == 0 {
        bail!("{flag} {s:?} must be more than zero");
    }
    Ok(b)
}

/// A size flag in whole MiB, rounding up (the API's `memory_mb`/`disk_mb`).
pub fn size_mib(flag: &str, s: &str) -> Result<u64> {
    Ok(size_bytes(flag, s)?.div_ceil(1 << 20))
}

/// `--cpus`: a positive, finite number.
pub fn cpus(c: f64) -> Result<f64> {
    if !(c > 0.0 && c.is_finite()) {
        bail!("--cpus must be a positive number");
    }
    Ok(c)
}

/// Squeezes a message onto one line: line breaks and other control
/// characters become single spaces; the ends are trimmed.
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut space = false;
    for c in msg.chars() {
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// The `limits` object of a sandbox or review request, from the flags given
/// (None when none was).
pub fn limits(
    memory: Option<&str>,
    cpus: Option<f64>,
    pids: Option<u64>,
    disk: Option<&str>,
) -> Result<Option<serde_json::Value>> {
    let mut limits = serde_json::Map::new();
    if let Some(m) = memory {
        limits.insert("memory_mb".into(), size_mib("--memory", m)?.into());
    }
    if let Some(c) = cpus {
        limits.insert("cpus".into(), self::cpus(c)?.into());
    }
    if let Some(p) = pids {
        limits.insert("pids".into(), p.into());
    }
    if let Some(d) = disk {
        limits.insert("disk_mb".into(), size_mib("--disk", d)?.into());
    }
    Ok((!limits.is_empty()).then_some(serde_json::Value::Object(limits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_values_split_at_the_first_equals() {
        let m = key_values("--env", &v(&["A=1", "B=x=y", "C=", "A=2"])).unwrap();
        assert_eq!(m["A"], "2");
        assert_eq!(m["B"], "x=y");
        assert_eq!(m["C"], "");
        assert_eq!(m.len(), 3);
        assert!(key_values("--env", &v(&[])).unwrap().is_empty());
    }

    #[test]
    fn key_values_refuse_malformed_pairs() {
        for bad in ["A", "=1", ""] {
            let e = key_values("--env", &v(&[bad])).unwrap_err().to_string();
            assert!(e.starts_with("--env"), "{bad:?}: {e}");
        }
        assert!(env(&v(&["A\0B=1"])).is_err());
    }

    #[test]
    fn labels_parse_and_filter() {
        let m = labels(&v(&["team=ml", "run=2026-11-23"])).unwrap();
        assert_eq!(m["team"], "ml");
        assert!(labels(&v(&["a b=c"])).is_err());
        assert!(labels(&v(&["novalue"])).is_err());
        assert_eq!(label_filters(&v(&["k=v=w"])).unwrap(), v(&["k=v=w"]));
        assert!(label_filters(&v(&["=v"])).is_err());
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(duration_secs("--timeout", "30s").unwrap(), 30);
        assert_eq!(duration_secs("--timeout", "5m").unwrap(), 300);
        assert_eq!(duration_secs("--timeout", "1h30m").unwrap(), 5400);
        assert_eq!(duration_secs("--timeout", "90").unwrap(), 90);
        assert_eq!(duration_secs("--timeout", "1500ms").unwrap(), 2);
        assert!(duration_secs("--timeout", "0").is_err());
        assert!(duration_secs("--timeout", "soon").is_err());
    }

    #[test]
    fn sizes_in_bytes_and_mib() {
        assert_eq!(size_bytes("--max-file", "1G").unwrap(), 1 << 30);
        assert_eq!(size_mib("--memory", "512M").unwrap(), 512);
        assert_eq!(size_mib("--memory", "1G").unwrap(), 1024);
        assert_eq!(size_mib("--memory", "1500K").unwrap(), 2);
        assert!(size_mib("--memory", "0").is_err());
        let e = size_mib("--memory", "lots").unwrap_err().to_string();
        assert!(e.starts_with("--memory"), "{e}");
    }

    #[test]
    fn cpus_must_be_positive() {
        assert_eq!(cpus(0.5).unwrap(), 0.5);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(one_line("a\nb\r\n  c\t\u{1b}d "), "a b c d");
        assert_eq!(one_line("\n x"), "x");
        assert_eq!(one_line(""), "");
    }
}

//! Human-friendly sizes ("256M") and durations ("30s") for the CLI and config.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("invalid size {0:?}: expected a number with an optional K, M, G or T suffix (powers of 1024)")]
    Size(String),
    #[error("invalid duration {0:?}: expected e.g. 500ms, 30s, 5m, 2h")]
    Duration(String),
}

/// Parses `512`, `64K`, `256M`, `256MiB`, `1G`, `1.5G` (binary multiples) into bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let err = || SizeError::Size(s.to_string());
    let mut t = s.trim();
    // Accept "256MB" and "256MiB" as well as "256M".
    if let Some(rest) = t.strip_suffix(['B', 'b']) {
        t = rest.strip_suffix(['i', 'I']).unwrap_or(rest);
    }
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err());
    }
    let v: f64 = num.parse().map_err(|_| err())?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// Parses `30s`, `500ms`, `5m`, `1h30m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, SizeError> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|_| SizeError::Duration(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("256MB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        for bad in ["", "M", "-1M", "12X", "1..2M", "NaNM"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
    }
}

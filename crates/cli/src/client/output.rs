//! Printing answers: the raw JSON for `--json`, else tables and
//! `field: value` lines built from the JSON. Writes go to stdout; a reader
//! that went away (`| head`) is not an error.

use super::parse::one_line;
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Write;

/// Writes `text` to stdout; a closed pipe is ignored.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Prints one JSON document (nothing for `null`, i.e. a `204` answer).
pub fn json(v: &Value) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    out(&format!("{}\n", serde_json::to_string_pretty(v)?))
}

/// A field of an object for people: strings as they are, `null` or missing
/// as `-`, booleans as yes/no, objects and arrays as compact JSON.
pub fn field(v: &Value, key: &str) -> String {
    show(v.get(key).unwrap_or(&Value::Null))
}

pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => one_line(s),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Object(m) if m.is_empty() => "-".into(),
        Value::Array(a) if a.is_empty() => "-".into(),
        other => other.to_string(),
    }
}

/// `{"k":"v",…}` as `k=v,…` (labels).
pub fn pairs(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(","),
        _ => "-".into(),
    }
}

/// A byte count field, in binary units.
pub fn bytes_field(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_u64) {
        Some(n) => human_bytes(n),
        None => field(v, key),
    }
}

/// `1536` → `1.5K`; `0` → `0B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else if value >= 10.0 || value.fract() < 0.05 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// The `items` array of a listing.
pub fn items(v: &Value) -> Result<&[Value]> {
    v.get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .context("unexpected answer from the server: no \"items\" list")
}

/// Tells on stderr how to fetch the next page, when there is one.
pub fn next_page_hint(v: &Value, flag: &str) {
    if let Some(c) = v.get("next_cursor").and_then(Value::as_str) {
        super::note(&format!("more items: repeat with {flag} {c}"));
    }
}

/// Prints `label: value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) -> Result<()> {
    out(&render_fields(rows))
}

fn render_fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut text = String::new();
    for (k, v) in rows {
        text.push_str(&format!("{:width$}  {v}\n", format!("{k}:")));
    }
    text
}

/// A table with a header row; columns padded to their widest cell, the
/// last one left ragged.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut text = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i] - c.chars().count();
                    line.push_str(c);
                    line.extend(std::iter::repeat_n(' ', pad + 2));
                } else {
                    line.push_str(c);
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    pub fn print(&self) -> Result<()> {
        out(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["ID", "NAME", "SIZE"]);
        t.row(vec!["file_1".into(), "a.csv".into(), "1K".into()]);
        t.row(vec!["file_22".into(), "report.pdf".into(), "-".into()]);
        assert_eq!(
            t.render(),
            "ID       NAME        SIZE\n\
             file_1   a.csv       1K\n\
             file_22  report.pdf  -\n"
        );
    }

    #[test]
    fn fields_for_people() {
        let v = json!({"s": "x", "n": null, "b": true, "i": 3, "o": {"a": 1}, "e": ""});
        assert_eq!(field(&v, "s"), "x");
        assert_eq!(field(&v, "n"), "-");
        assert_eq!(field(&v, "missing"), "-");
        assert_eq!(field(&v, "b"), "yes");
        assert_eq!(field(&v, "i"), "3");
        assert_eq!(field(&v, "o"), r#"{"a":1}"#);
        assert_eq!(field(&v, "e"), "-");
        let l = json!({"labels": {"team": "ml", "n": 1}});
        assert_eq!(pairs(&l, "labels"), "n=1,team=ml");
        assert_eq!(pairs(&l, "nope"), "-");
    }

    #[test]
    fn field_lines_align() {
        let text = render_fields(&[("id", "tn_1".into()), ("created", "now".into())]);
        assert_eq!(text, "id:       tn_1\ncreated:  now\n");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(512 << 20), "512M");
        assert_eq!(human_bytes(1 << 30), "1G");
        assert_eq!(bytes_field(&json!({"size": 2048}), "size"), "2K");
    }

    #[test]
    fn listings_need_items() {
        assert_eq!(items(&json!({"items": [1, 2]})).unwrap().len(), 2);
        assert!(items(&json!({"things": []})).is_err());
    }
}

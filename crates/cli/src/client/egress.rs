//! Egress from the client's side: `--allow-host` on create and submit,
//! `warden sandbox network`, and the egress log of sandboxes and reviews.

use super::http::Api;
use super::output::{self, field, Table};
use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use warden_spec::EgressRule;

/// The `network` body for `--allow-host` values (checked here first, so a
/// typo is reported before anything is sent); None without any.
pub fn allowlist_body(allow: &[String]) -> Result<Option<Value>> {
    if allow.is_empty() {
        return Ok(None);
    }
    Ok(Some(rules_body(allow)?))
}

fn rules_body(allow: &[String]) -> Result<Value> {
    let rules = allow
        .iter()
        .map(|h| EgressRule::parse(h).with_context(|| format!("--allow-host {h}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "mode": "allowlist", "rules": rules }))
}

/// `PUT /v1/sandboxes/{id}/network` with these rules (none: deny all).
pub async fn set_rules(api: &Api, id: &str, allow: &[String], as_json: bool) -> Result<()> {
    let body = rules_body(allow)?;
    let rb = api
        .request(Method::PUT, &["v1", "sandboxes", id, "network"])?
        .json(&body);
    let s = api.json(rb).await?;
    if as_json {
        return output::json(&s);
    }
    let hosts: Vec<String> = s["network"]["rules"]
        .as_array()
        .map(|r| r.iter().map(|r| field(r, "host")).collect())
        .unwrap_or_default();
    let shown = if hosts.is_empty() {
        "nothing (every connection is refused)".to_string()
    } else {
        hosts.join(", ")
    };
    output::out(&format!("{id} may now reach: {shown}\n"))
}

/// Prints the egress log at `segments` (a sandbox's or a review's), every
/// page of it.
pub async fn print_log(api: &Api, segments: &[&str], as_json: bool) -> Result<()> {
    let mut items: Vec<Value> = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let mut query = vec![("limit", "1000".to_string())];
        if let Some(a) = after {
            query.push(("after", a.to_string()));
        }
        let page = api.get(segments, &query).await?;
        items.extend(output::items(&page)?.iter().cloned());
        match page["next_after"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if as_json {
        return output::json(&json!({ "items": items }));
    }
    let mut t = Table::new(&[
        "AT",
        "OUTCOME",
        "METHOD",
        "DESTINATION",
        "RULE/REASON",
        "UP",
        "DOWN",
    ]);
    for e in &items {
        let why = match e["outcome"].as_str() {
            Some("allowed") => field(e, "rule"),
            _ => format!("{}: {}", field(e, "reason"), field(e, "detail")),
        };
        t.row(vec![
            field(e, "at"),
            field(e, "outcome"),
            field(e, "method"),
            format!("{}:{}", field(e, "host"), field(e, "port")),
            why,
            output::bytes_field(e, "bytes_up"),
            output::bytes_field(e, "bytes_down"),
        ]);
    }
    t.print()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_hosts_become_an_allowlist_and_typos_are_caught() {
        assert_eq!(allowlist_body(&[]).unwrap(), None);
        let v = allowlist_body(&["pypi.org".into(), "*.example.com:8443".into()])
            .unwrap()
            .unwrap();
        assert_eq!(
            v,
            json!({"mode": "allowlist", "rules": [
                {"host": "pypi.org"}, {"host": "*.example.com", "ports": [8443]}]})
        );
        assert!(allowlist_body(&["10.0.0.1".into()]).is_err());
        assert!(allowlist_body(&["a.test:http".into()]).is_err());
    }
}

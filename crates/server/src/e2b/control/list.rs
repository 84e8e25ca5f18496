//! `GET /sandboxes` and `GET /v2/sandboxes`: the caller's running
//! sandboxes (those created through `/v1` too), filtered by metadata as
//! the SDKs encode it, paged with `nextToken` / `x-next-token`.

use super::auth::E2bCaller;
use super::error::{E2bError, E2bResult};
use super::models::Listed;
use super::view;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use std::collections::BTreeMap;
use warden_store::{SandboxFilter, SandboxId, SandboxState};

/// Most sandboxes in one v2 page (E2B's bound too).
const MAX_PAGE: u32 = 100;

/// The `metadata` filter: the SDKs send `k1=v1&k2=v2` with each key and
/// value percent-encoded first, so after the query string's own decoding
/// each pair is decoded once more (query-style, `+` as a space, as E2B's
/// API does; the SDKs themselves encode a space as `%20`).
fn metadata_filter(raw: &str) -> E2bResult<BTreeMap<String, String>> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| E2bError::bad_request("metadata: not UTF-8 after decoding"))
    };
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        out.insert(decode(&k)?, decode(&v)?);
    }
    Ok(out)
}

fn query(q: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `GET /sandboxes`: every running sandbox of the caller's, unpaged.
pub async fn list_v1(
    E2bCaller(caller): E2bCaller,
    RawQuery(q): RawQuery,
) -> E2bResult<Json<Vec<Listed>>> {
    let mut filter = SandboxFilter {
        states: vec![SandboxState::Running],
        labels: BTreeMap::new(),
        newest_first: false,
    };
    for (k, v) in query(q) {
        match k.as_str() {
            "metadata" => filter.labels = metadata_filter(&v)?,
            other => {
                return Err(E2bError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = caller
            .store
            .list_sandboxes(&filter, cursor.as_deref(), 1000)
            .await?;
        out.extend(page.items.iter().map(view::listed));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok(Json(out))
}

/// `GET /v2/sandboxes`: `metadata`, `state` (running | paused, comma
/// list or repeated), `template`, `startedAfter`, `order` (`desc`, newest first, as
/// E2B's default; or `asc`), `limit` (1-100, default 100), `nextToken`.
pub async fn list_v2(
    E2bCaller(caller): E2bCaller,
    RawQuery(q): RawQuery,
) -> E2bResult<(HeaderMap, Json<Vec<Listed>>)> {
    let mut filter = SandboxFilter {
        states: vec![SandboxState::Running],
        labels: BTreeMap::new(),
        newest_first: true,
    };
    let (mut limit, mut token) = (MAX_PAGE, None);
    let (mut template, mut after) = (None, None);
    let mut asked_states: Option<Vec<SandboxState>> = None;
    for (k, v) in query(q) {
        match k.as_str() {
            "metadata" => filter.labels = metadata_filter(&v)?,
            "state" => {
                let states: Vec<&str> = v.split(',').map(str::trim).collect();
                if let Some(bad) = states.iter().find(|s| !matches!(**s, "running" | "paused")) {
                    return Err(E2bError::bad_request(format!(
                        "state {bad:?}: expected running or paused"
                    )));
                }
                // A comma list or repeated parameters (`state=running&
                // state=paused`), as clients send either: all of them count.
                let listed = asked_states.get_or_insert_with(Vec::new);
                for s in states {
                    let state = match s {
                        "paused" => SandboxState::Paused,
                        _ => SandboxState::Running,
                    };
                    if !listed.contains(&state) {
                        listed.push(state);
                    }
                }
            }
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or_else(|| {
                        E2bError::bad_request(format!("limit must be 1 to {MAX_PAGE}"))
                    })?
            }
            "nextToken" => {
                // The token is the last sandbox id of the previous page.
                SandboxId::parse(&v)
                    .ok_or_else(|| E2bError::bad_request(format!("invalid nextToken {v:?}")))?;
                token = Some(v);
            }
            "order" => {
                filter.newest_first = match v.as_str() {
                    "desc" => true,
                    "asc" => false,
                    _ => {
                        return Err(E2bError::bad_request(format!(
                            "order {v:?}: expected asc or desc"
                        )))
                    }
                }
            }
            "template" => template = Some(view::template_of(view::image_for(&v))),
            "startedAfter" => {
                after = Some(crate::api::parse_time(&v).ok_or_else(|| {
                    E2bError::bad_request(format!("startedAfter {v:?}: expected RFC 3339"))
                })?)
            }
            other => {
                return Err(E2bError::bad_request(format!(
                    "unknown parameter {other:?}"
                )))
            }
        }
    }
    if let Some(states) = asked_states {
        filter.states = states;
    }
    let mut headers = HeaderMap::new();
    let page = caller
        .store
        .list_sandboxes(&filter, token.as_deref(), limit)
        .await?;
    // Filters the store does not know apply to the page: it may come out
    // short, and the token still leads on.
    let items = page
        .items
        .iter()
        // E2B's startedAfter includes a sandbox started at exactly that time.
        .filter(|r| after.is_none_or(|t| r.created_at >= t))
        .map(view::listed)
        .filter(|l| template.as_ref().is_none_or(|t| &l.template_id == t))
        .collect();
    if let Some(next) = page.next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        headers.insert("x-next-token", next);
    }
    Ok((headers, Json(items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_decoded_twice_as_the_sdks_encode_it() {
        // Python: urlencode({quote(k): quote(v)}); JS: URLSearchParams of
        // encodeURIComponent'd pairs. For {"user id": "a&b=c/d", "k": "v"}:
        let py = "user%2520id=a%2526b%253Dc%2Fd&k=v";
        let js = "user%2520id=a%2526b%253Dc%252Fd&k=v";
        let plus = "user%2Bid=a%2526b%253Dc%252Fd&k=v";
        for raw in [py, js, plus] {
            let m = metadata_filter(raw).unwrap();
            assert_eq!(m["user id"], "a&b=c/d", "{raw}");
            assert_eq!(m["k"], "v");
        }
    }
}

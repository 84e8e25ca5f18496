//! Listing: metadata filters as the SDKs encode them, paging.

use super::*;

/// `metadata` as the Python SDK encodes it: `urlencode({quote(k):
/// quote(v)})`, then as a query parameter.
fn metadata_query(pairs: &[(&str, &str)]) -> String {
    // Python's `quote`: unreserved characters and '/' stay, the rest %XX.
    let quote = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let inner: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (quote(k), quote(v))))
        .finish();
    url::form_urlencoded::byte_serialize(inner.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_metadata_and_page_with_next_token() {
    let server = start();
    let (_, a) = server.admin().tenant("e2b-list", None).await;
    let e = E2b::new(&a);
    let mut team_a = Vec::new();
    for team in ["a", "b", "a"] {
        let sb = e
            .create(json!({"templateID": "base", "metadata": {"team": team, "note": "x y/z"}}))
            .await;
        if team == "a" {
            team_a.push(sb["sandboxID"].as_str().unwrap().to_string());
        }
    }
    // One created through /v1 is listed too.
    team_a.push(
        a.sandbox(json!({"labels": {"team": "a", "note": "x y/z"}}))
            .await,
    );

    let filter = metadata_query(&[("team", "a"), ("note", "x y/z")]);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v2/sandboxes?metadata={filter}&limit=2&state=running,paused");
        if let Some(t) = &token {
            path.push_str(&format!("&nextToken={t}"));
        }
        let r = e.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        for s in r.body.as_array().unwrap() {
            assert_eq!(s["metadata"]["team"], "a", "{s}");
            assert_eq!(s["state"], "running", "{s}");
            assert!(s["startedAt"].is_string() && s["endAt"].is_string(), "{s}");
            assert_eq!(s["envdVersion"], "0.6.4", "{s}");
            seen.push(s["sandboxID"].as_str().unwrap().to_string());
        }
        token = r
            .headers
            .get("x-next-token")
            .map(|v| v.to_str().unwrap().to_string());
        if token.is_none() {
            break;
        }
    }
    let mut newest_first = team_a.clone();
    newest_first.reverse();
    assert_eq!(
        seen, newest_first,
        "newest first (E2B's order), every one once"
    );
    assert_eq!(pages, 2);
    // v1: the whole list, same filter.
    let v1 = e.get(&format!("/sandboxes?metadata={filter}")).await;
    assert_eq!(v1.status, 200, "{}", v1.text);
    assert_eq!(v1.body.as_array().unwrap().len(), 3, "{}", v1.text);
    let all = e.get("/v2/sandboxes").await;
    assert_eq!(all.body.as_array().unwrap().len(), 4, "{}", all.text);
    // Nothing is ever paused.
    let paused = e.get("/v2/sandboxes?state=paused").await;
    assert_eq!((paused.status.as_u16(), &paused.body), (200, &json!([])));
    // Repeated, as some clients send a list: each counts, not the last.
    let repeated = e.get("/v2/sandboxes?state=running&state=paused").await;
    assert_eq!(repeated.status, 200, "{}", repeated.text);
    assert_eq!(
        repeated.body.as_array().unwrap().len(),
        4,
        "{}",
        repeated.text
    );
    let by_template = e.get("/v2/sandboxes?template=base&limit=100").await;
    assert_eq!(by_template.body.as_array().unwrap().len(), 4);
    // order=asc is oldest first, order=desc as the default.
    let listed = |r: &Answer| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sandboxID"].as_str().unwrap().to_string())
            .collect()
    };
    let asc = listed(&e.get("/v2/sandboxes?order=asc").await);
    let desc = listed(&e.get("/v2/sandboxes?order=desc").await);
    assert_eq!(desc, listed(&all));
    assert_eq!(asc.iter().rev().cloned().collect::<Vec<_>>(), desc);
    // startedAfter includes a sandbox started at exactly that time (the
    // newest one here, to the millisecond), as E2B's does.
    let newest = all.body.as_array().unwrap().first().unwrap().clone();
    let at: String =
        url::form_urlencoded::byte_serialize(newest["startedAt"].as_str().unwrap().as_bytes())
            .collect();
    let since = e.get(&format!("/v2/sandboxes?startedAfter={at}")).await;
    assert_eq!(since.status, 200, "{}", since.text);
    let ids: Vec<&str> = since
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sandboxID"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&newest["sandboxID"].as_str().unwrap()),
        "{}",
        since.text
    );
    let msg = e2b_error(&e.get("/v2/sandboxes?order=sideways").await, 400);
    assert!(msg.contains("asc or desc"), "{msg}");
    e2b_error(&e.get("/v2/sandboxes?limit=0").await, 400);
    e2b_error(&e.get("/v2/sandboxes?state=sleeping").await, 400);
}

//! Plain HTTP through the proxy: each absolute-form request is judged on
//! its own (a kept-alive client connection may name another host next), its
//! `Host` must be the target, and it goes to the checked address in origin
//! form on a connection of its own.

use crate::ctx::{dial, event, Body, Ctx};
use crate::event::{EgressEvent, Outcome};
use crate::policy::Deny;
use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) async fn forward(req: Request<Incoming>, ctx: Arc<Ctx>) -> Response<Body> {
    let uri = req.uri().clone();
    let host = uri.host().unwrap_or_default().to_string();
    let port = uri.port_u16().unwrap_or(80);
    let mut ev = event(req.method().as_str(), &host, port);
    if uri.scheme_str() != Some("http") {
        let d = Deny::new(
            "unsupported_scheme",
            format!("only http:// is forwarded as a request; use CONNECT for {uri}"),
        );
        return ctx.refuse(ev, d, StatusCode::BAD_REQUEST);
    }
    let policy = ctx.policy();
    let (host, rule) = match policy.check(&host, port) {
        Ok(ok) => ok,
        Err(d) => return ctx.refuse(ev, d, StatusCode::FORBIDDEN),
    };
    if let Err(d) = host_header_matches(req.headers(), &host, port) {
        return ctx.refuse(ev, d, StatusCode::FORBIDDEN);
    }
    ev.rule = Some(rule);
    let tcp = match dial(&policy, &host, port, &mut ev).await {
        Ok(s) => s,
        Err((d, status)) => return ctx.refuse(ev, d, status),
    };
    let addr = ev.addr.clone().unwrap_or_default();
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(x) => x,
        Err(e) => {
            let d = Deny::new("connect_failed", format!("talking to {addr}: {e}"));
            return ctx.refuse(ev, d, StatusCode::BAD_GATEWAY);
        }
    };
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = conn => {}
        }
    });

    let up = Arc::new(AtomicU64::new(0));
    let (parts, body) = req.into_parts();
    let mut out = Request::new(counted(body, up.clone(), None));
    *out.method_mut() = parts.method;
    *out.uri_mut() = origin_form(&parts.uri);
    *out.headers_mut() = without_hop_by_hop(parts.headers);
    let resp = match sender.send_request(out).await {
        Ok(r) => r,
        Err(e) => {
            let d = Deny::new("upstream_failed", format!("request to {addr}: {e}"));
            return ctx.refuse(ev, d, StatusCode::BAD_GATEWAY);
        }
    };
    ev.outcome = Outcome::Allowed;
    let (mut parts, body) = resp.into_parts();
    parts.headers = without_hop_by_hop(parts.headers);
    // The event is recorded when the response body is finished or dropped,
    // so it carries the bytes that really crossed.
    let guard = RecordOnDrop {
        ev: Some(ev),
        ctx,
        up,
        down: Arc::new(AtomicU64::new(0)),
    };
    let down = guard.down.clone();
    Response::from_parts(parts, counted(body, down, Some(guard)))
}

/// `Host` must name the request's target (a missing one is refused too:
/// the destination would otherwise pick a virtual host of its own).
fn host_header_matches(headers: &HeaderMap, host: &str, port: u16) -> Result<(), Deny> {
    // Only one is checked below, and both would be forwarded: a server
    // that honours the second would serve a host the policy never saw.
    if headers.get_all(header::HOST).iter().nth(1).is_some() {
        return Err(Deny::new(
            "host_mismatch",
            "the request has more than one Host header",
        ));
    }
    let Some(value) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return Err(Deny::new("host_mismatch", "the request has no Host header"));
    };
    let bare =
        |h: &str| warden_spec::normalise_host(h.trim_start_matches('[').trim_end_matches(']'));
    let same = split_host_port(value).is_some_and(|(h, p)| bare(h) == bare(host) && p == port);
    if same {
        Ok(())
    } else {
        Err(Deny::new(
            "host_mismatch",
            format!("Host {value:?} differs from the request target {host}:{port}"),
        ))
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` (port 80 when absent).
fn split_host_port(v: &str) -> Option<(&str, u16)> {
    if let Some(rest) = v.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        return match after {
            "" => Some((h, 80)),
            p => Some((h, p.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match v.rsplit_once(':') {
        Some((h, p)) => Some((h, p.parse().ok()?)),
        None => Some((v, 80)),
    }
}
fn origin_form(uri: &Uri) -> Uri {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    pq.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

/// Drops the headers that describe one hop (RFC 9110 section 7.6.1), and
/// any the `Connection` header names.
fn without_hop_by_hop(mut h: HeaderMap) -> HeaderMap {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for name in named {
        h.remove(name.as_str());
    }
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(name);
    }
    h
}

struct RecordOnDrop {
    ev: Option<EgressEvent>,
    ctx: Arc<Ctx>,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Drop for RecordOnDrop {
    fn drop(&mut self) {
        if let Some(mut ev) = self.ev.take() {
            ev.bytes_up = self.up.load(Ordering::Relaxed);
            ev.bytes_down = self.down.load(Ordering::Relaxed);
            ev.duration_ms = crate::event::now_ms().saturating_sub(ev.at_ms);
            self.ctx.record(ev);
        }
    }
}

/// A body that counts the data bytes passing through it; `guard` lives as
/// long as the body does.
fn counted(body: Incoming, count: Arc<AtomicU64>, guard: Option<RecordOnDrop>) -> Body {
    body.map_frame(move |f: Frame<Bytes>| {
        let _ = &guard;
        if let Some(d) = f.data_ref() {
            count.fetch_add(d.len() as u64, Ordering::Relaxed);
        }
        f
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_must_name_the_target() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, v.parse().unwrap());
            m
        };
        assert!(host_header_matches(&h("allowed.test"), "allowed.test", 80).is_ok());
        assert!(host_header_matches(&h("Allowed.Test:80"), "allowed.test", 80).is_ok());
        assert!(host_header_matches(&h("allowed.test:8080"), "allowed.test", 8080).is_ok());
        assert!(host_header_matches(&h("allowed.test"), "allowed.test", 8080).is_err());
        assert!(host_header_matches(&h("other.test"), "allowed.test", 80).is_err());
        assert!(host_header_matches(&h("other.test:80"), "allowed.test", 80).is_err());
        assert!(host_header_matches(&HeaderMap::new(), "allowed.test", 80).is_err());
        assert!(host_header_matches(&h("[::1]:80"), "[::1]", 80).is_ok());
        assert!(host_header_matches(&h("allowed.test:x"), "allowed.test", 80).is_err());
        // Two Host headers, the checked one first: refused.
        let mut two = h("allowed.test");
        two.append(header::HOST, "other.test".parse().unwrap());
        let d = host_header_matches(&two, "allowed.test", 80).unwrap_err();
        assert!(d.detail.contains("more than one Host"), "{}", d.detail);
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut m = HeaderMap::new();
        m.insert("connection", "x-secret, keep-alive".parse().unwrap());
        m.insert("x-secret", "1".parse().unwrap());
        m.insert("proxy-authorization", "Basic eA==".parse().unwrap());
        m.insert("accept", "*/*".parse().unwrap());
        let m = without_hop_by_hop(m);
        assert_eq!(m.len(), 1);
        assert!(m.contains_key("accept"));
    }
}

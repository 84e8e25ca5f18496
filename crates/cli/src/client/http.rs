//! A small HTTP layer over `reqwest`: the base URL, the bearer token, safe
//! path building, and the API's error JSON turned into one clear error.

use super::parse::one_line;
use super::{AdminAuth, Server, TenantAuth};
use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// An error answer of the API: `{"error": {"code", "message"}}` and its
/// status. Shown as `<status> <code>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The server could not be reached at all (nothing was sent).
#[derive(Debug)]
pub struct Unreachable(pub String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Longest piece of a non-JSON error body quoted in a message.
const SNIPPET: usize = 200;

/// Decodes an error answer. A body that is not the API's error JSON (a
/// proxy's page, an empty body) still gives a useful error: the status's
/// reason as the code and the start of the body as the message.
pub fn decode_error(status: StatusCode, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Envelope>(body) {
        return ApiError {
            status: status.as_u16(),
            code: one_line(&e.error.code),
            message: one_line(&e.error.message),
        };
    }
    let text = one_line(&String::from_utf8_lossy(body));
    let message = match text.char_indices().nth(SNIPPET) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    };
    ApiError {
        status: status.as_u16(),
        code: status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_"),
        message,
    }
}

/// A client of one Warden server with one credential.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
}

impl Api {
    /// A client that carries the tenant API key.
    pub fn tenant(server: &Server, auth: &TenantAuth) -> Result<Api> {
        let key = auth
            .api_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .context("no API key: set WARDEN_API_KEY or pass --api-key")?;
        Api::new(&server.url, key)
    }

    /// A client that carries the admin token.
    pub fn admin(server: &Server, auth: &AdminAuth) -> Result<Api> {
        let token = auth
            .admin_token
            .as_deref()
            .filter(|k| !k.is_empty())
            .context("no admin token: set WARDEN_ADMIN_TOKEN or pass --admin-token")?;
        Api::new(&server.url, token)
    }

    pub fn new(url: &str, token: &str) -> Result<Api> {
        let base = parse_base(url)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| anyhow!("the token holds characters not allowed in an HTTP header"))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("warden-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api { http, base, auth })
    }

    /// The URL of `segments` under the base URL, each segment
    /// percent-encoded (an id can never climb out of its place).
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        join(&self.base, segments)
    }

    /// A request with the credential attached.
    pub fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        Ok(self
            .http
            .request(method, self.url(segments)?)
            .header(AUTHORIZATION, self.auth.clone()))
    }

    /// A request to a path and query already encoded (`/v1/...?...`),
    /// under the base URL, with the credential attached.
    pub fn request_encoded(&self, method: Method, path_and_query: &str) -> Result<RequestBuilder> {
        let url = format!(
            "{}{path_and_query}",
            self.base.as_str().trim_end_matches('/')
        );
        let url = Url::parse(&url).with_context(|| format!("{url:?} is not a URL"))?;
        Ok(self
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone()))
    }

    /// Sends a request; a non-2xx answer becomes an [`ApiError`], a failure
    /// to reach the server an error that says which URL was tried.
    pub async fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let resp = rb.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(decode_error(status, &body).into())
    }

    /// Sends a request and reads its JSON answer (`null` for a `204`).
    pub async fn json(&self, rb: RequestBuilder) -> Result<Value> {
        let resp = self.send(rb).await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).context("the server's answer is not JSON")
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        self.json(self.request(Method::GET, segments)?.query(query))
            .await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value> {
        self.json(self.request(Method::POST, segments)?.json(body))
            .await
    }

    /// A `POST` without a body (state changes such as `…/disable`).
    pub async fn post_empty(&self, segments: &[&str]) -> Result<Value> {
        self.json(self.request(Method::POST, segments)?).await
    }

    pub async fn delete(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        self.json(self.request(Method::DELETE, segments)?.query(query))
            .await
    }

    /// Explains a failure to talk to the server, on one line.
    pub fn transport(&self, e: reqwest::Error) -> anyhow::Error {
        let cause = root_cause(&e);
        if e.is_connect() {
            Unreachable(format!(
                "cannot connect to the Warden server at {} ({cause}); is it running? \
                 Set WARDEN_URL or --url to its address",
                self.base
            ))
            .into()
        } else if e.is_timeout() {
            anyhow!("the Warden server at {} did not answer in time", self.base)
        } else {
            anyhow!("talking to the Warden server at {}: {cause}", self.base)
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Checks `WARDEN_URL`/`--url`: an absolute `http://` URL with a host.
pub fn parse_base(url: &str) -> Result<Url> {
    let base = Url::parse(url.trim()).with_context(|| format!("--url {url:?} is not a URL"))?;
    match base.scheme() {
        "http" => {}
        "https" => bail!(
            "--url {url:?}: this build speaks plain http only; \
             put the server behind a local TLS-terminating proxy or use http://"
        ),
        other => bail!("--url {url:?}: unsupported scheme {other:?} (use http://)"),
    }
    if base.host_str().is_none_or(str::is_empty) {
        bail!("--url {url:?} has no host");
    }
    if base.query().is_some() || base.fragment().is_some() {
        bail!("--url {url:?} may not carry a query or fragment");
    }
    Ok(base)
}

/// Appends percent-encoded path segments to `base` (which may itself have a
/// path prefix, e.g. behind a proxy).
pub fn join(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| anyhow!("{base} cannot carry a path"))?;
        path.pop_if_empty();
        for s in segments {
            if s.is_empty() || *s == "." || *s == ".." {
                bail!("{s:?} is not a valid id");
            }
            path.push(s);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_becomes_status_code_message() {
        let body = br#"{"error":{"code":"not_found","message":"no such sandbox"}}"#;
        let e = decode_error(StatusCode::NOT_FOUND, body);
        assert_eq!(e.code, "not_found");
        assert_eq!(e.to_string(), "404 not_found: no such sandbox");
        let e = decode_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"error":{"code":"quota_exceeded","message":"max_sandboxes (5)\nreached"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "429 quota_exceeded: max_sandboxes (5) reached"
        );
    }

    #[test]
    fn error_without_a_message_still_reads_well() {
        let e = decode_error(StatusCode::CONFLICT, br#"{"error":{"code":"conflict"}}"#);
        assert_eq!(e.to_string(), "409 conflict");
    }

    #[test]
    fn non_json_error_bodies_fall_back_to_the_reason() {
        let e = decode_error(StatusCode::BAD_GATEWAY, b"<html>\n<h1>Bad</h1>\n</html>");
        assert_eq!(
            e.to_string(),
            "502 bad_gateway: <html> <h1>Bad</h1> </html>"
        );
        let e = decode_error(StatusCode::NOT_FOUND, b"");
        assert_eq!(e.to_string(), "404 not_found");
        let long = "x".repeat(1000);
        let e = decode_error(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes());
        assert_eq!(e.message.chars().count(), SNIPPET + 1);
        // JSON, but not the error envelope.
        let e = decode_error(StatusCode::BAD_REQUEST, br#"{"oops":1}"#);
        assert_eq!(e.code, "bad_request");
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base("http://127.0.0.1:7300").is_ok());
        assert!(parse_base("http://warden.internal/prefix/").is_ok());
        for bad in [
            "127.0.0.1:7300",
            "https://x",
            "ftp://x",
            "http://x/?a=b",
            "nonsense",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        let base = parse_base("http://h:1").unwrap();
        assert_eq!(
            join(&base, &["v1", "sandboxes", "sbx_1", "exec"])
                .unwrap()
                .as_str(),
            "http://h:1/v1/sandboxes/sbx_1/exec"
        );
        assert_eq!(
            join(&base, &["v1", "files", "a/../b?c#d"])
                .unwrap()
                .as_str(),
            "http://h:1/v1/files/a%2F..%2Fb%3Fc%23d"
        );
        assert!(join(&base, &["v1", "files", ".."]).is_err());
        assert!(join(&base, &["v1", "files", ""]).is_err());
        let prefixed = parse_base("http://h:1/warden/").unwrap();
        assert_eq!(
            join(&prefixed, &["v1", "usage"]).unwrap().as_str(),
            "http://h:1/warden/v1/usage"
        );
    }
}

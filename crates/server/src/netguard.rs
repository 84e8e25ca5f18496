//! Which addresses the server may call on a tenant's behalf (webhooks, and
//! later egress): public unicast only, checked after resolution, and the
//! connection made to exactly the address that was checked.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("not a valid URL: {0}")]
    Url(String),
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{host} resolves to {ip}, which is not a public address (the operator can allow private targets in config)")]
    NotPublic { host: String, ip: IpAddr },
}

/// A URL and the one address it is to be reached at.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: url::Url,
    pub host: String,
    pub addr: SocketAddr,
}

/// Parses and checks the URL's form (for validating a request early).
pub fn parse_url(raw: &str) -> Result<url::Url, TargetError> {
    let url = url::Url::parse(raw).map_err(|e| TargetError::Url(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TargetError::NoHost);
    }
    Ok(url)
}

/// Resolves the URL's host and checks every address; returns the first
/// address to connect to. With `allow_private`, any address is accepted.
pub async fn resolve(raw: &str, allow_private: bool) -> Result<Target, TargetError> {
    let url = parse_url(raw)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = warden_egress::resolve(&host, port, !allow_private)
        .await
        .map_err(|e| match e {
            warden_egress::ResolveError::Resolve(h) => TargetError::Resolve(h),
            warden_egress::ResolveError::NotPublic { host, ip } => {
                TargetError::NotPublic { host, ip }
            }
        })?;
    Ok(Target {
        url,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_checked_after_resolution() {
        assert_eq!(parse_url("ftp://x/").unwrap_err(), TargetError::Scheme);
        assert!(matches!(parse_url("not a url"), Err(TargetError::Url(_))));
        let e = resolve("http://127.0.0.1:9/hook", false).await.unwrap_err();
        assert!(matches!(e, TargetError::NotPublic { .. }), "{e}");
        let e = resolve("http://localhost:9/hook", false).await.unwrap_err();
        assert!(matches!(e, TargetError::NotPublic { .. }), "{e}");
        let e = resolve("http://[::1]:9/hook", false).await.unwrap_err();
        assert!(matches!(e, TargetError::NotPublic { .. }), "{e}");
        let t = resolve("http://127.0.0.1:9/hook", true).await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:9".parse().unwrap());
    }
}

//! Which addresses the server may call on a tenant's behalf (webhooks, and
//! later egress): public unicast only, checked after resolution, and the
//! connection made to exactly the address that was checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Public, globally routable unicast. Refuses loopback, private,
/// shared (CGNAT), link-local (including 169.254.169.254 metadata),
/// multicast, broadcast, documentation, benchmarking, reserved and
/// unspecified ranges, and IPv6 unique-local, link-local, site-local,
/// NAT64/6to4/Teredo wrappers of any of those, and IPv4-mapped forms.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    // Wrappers that carry an IPv4 address: judge the address they carry.
    if seg[0] == 0x0064 && seg[1] == 0xff9b {
        // NAT64 64:ff9b::/96
        let v4 = Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        );
        return is_public_v4(v4);
    }
    if seg[0] == 0x2002 {
        // 6to4 2002::/16
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x2001 && seg[1] == 0) // Teredo
        || seg[0] == 0x0100 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0 // discard-only
        || ip.to_ipv4().is_some()) // IPv4-compatible ::a.b.c.d
}

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
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|_| TargetError::Resolve(host.clone()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| TargetError::Resolve(host.clone()))?;
    if !allow_private {
        // Every address must be public: a name that resolves to a mix could
        // otherwise be steered to the private one.
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(TargetError::NotPublic { host, ip: bad.ip() });
        }
    }
    Ok(Target {
        url,
        host: lookup_host,
        addr: first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_passes() {
        for ok in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "151.101.1.69"] {
            assert!(is_public(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.170",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
    }

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

//! Which addresses Warden may connect to on a tenant's behalf (egress
//! proxy, webhooks): public unicast only, judged after resolution, and the
//! connection made to exactly the address that was judged.

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
pub enum ResolveError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{host} resolves to {ip}, which is not a public address")]
    NotPublic { host: String, ip: IpAddr },
}

/// Resolves `host` and returns the address to connect to. With
/// `public_only`, every address it resolves to must be public: a name that
/// resolves to a mix could otherwise be steered to the private one.
pub async fn resolve(host: &str, port: u16, public_only: bool) -> Result<SocketAddr, ResolveError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| ResolveError::Resolve(host.to_string()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| ResolveError::Resolve(host.to_string()))?;
    if public_only {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(ResolveError::NotPublic {
                host: host.to_string(),
                ip: bad.ip(),
            });
        }
    }
    Ok(first)
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
    async fn names_are_judged_after_resolution() {
        let e = resolve("localhost", 80, true).await.unwrap_err();
        assert!(matches!(e, ResolveError::NotPublic { .. }), "{e}");
        let e = resolve("[::1]", 80, true).await.unwrap_err();
        assert!(matches!(e, ResolveError::NotPublic { .. }), "{e}");
        let a = resolve("127.0.0.1", 9, false).await.unwrap();
        assert_eq!(a, "127.0.0.1:9".parse().unwrap());
    }
}

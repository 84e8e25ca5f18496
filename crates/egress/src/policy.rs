//! Deciding one request: host form, rules, then the address.

use crate::address::{resolve, ResolveError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use warden_spec::{is_host_name, normalise_host, EgressRule};

/// Why a request was refused: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub code: &'static str,
    pub detail: String,
}

impl Deny {
    pub(crate) fn new(code: &'static str, detail: impl Into<String>) -> Deny {
        Deny {
            code,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OverrideError {
    #[error("--resolve {0:?}: expected HOST[:PORT]=IP:PORT")]
    Syntax(String),
    #[error("--resolve {0:?}: {1:?} is not a host name")]
    Host(String, String),
}

/// Operator-set routes for names (like curl's `--resolve`): `host` or
/// `host:port` to a fixed address. Never taken from a tenant: the address
/// is used as given, without the public-address check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides(HashMap<String, SocketAddr>);

impl Overrides {
    /// Parses `HOST[:PORT]=IP:PORT` entries.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Result<Overrides, OverrideError> {
        let mut map = HashMap::new();
        for e in entries {
            let (key, addr) = e
                .split_once('=')
                .ok_or_else(|| OverrideError::Syntax(e.to_string()))?;
            let addr: SocketAddr = addr
                .trim()
                .parse()
                .map_err(|_| OverrideError::Syntax(e.to_string()))?;
            let key = normalise_host(key.trim());
            let host = match key.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => h.to_string(),
                Some(_) => return Err(OverrideError::Syntax(e.to_string())),
                None => key.clone(),
            };
            if !is_host_name(&host) {
                return Err(OverrideError::Host(e.to_string(), host));
            }
            map.insert(key, addr);
        }
        Ok(Overrides(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, host: &str, port: u16) -> Option<SocketAddr> {
        self.0
            .get(&format!("{host}:{port}"))
            .or_else(|| self.0.get(host))
            .copied()
    }
}

/// A sandbox's rules plus the operator's overrides.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<EgressRule>,
    pub overrides: std::sync::Arc<Overrides>,
}

impl Policy {
    /// Checks the form of `host` and the rules. Returns the normalised host
    /// and the rule that allows it.
    pub fn check(&self, host: &str, port: u16) -> Result<(String, String), Deny> {
        let host = normalise_host(host);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if !is_host_name(bare) {
            if bare.parse::<IpAddr>().is_ok() || looks_numeric(bare) {
                return Err(Deny::new(
                    "ip_literal",
                    format!("{host} is an IP address; destinations must be named by an allowed host name"),
                ));
            }
            return Err(Deny::new(
                "bad_host",
                format!("{host:?} is not a host name"),
            ));
        }
        match self.rules.iter().find(|r| r.allows(bare, port)) {
            Some(rule) => Ok((bare.to_string(), rule.display())),
            None => Err(Deny::new(
                "no_rule",
                format!("no rule allows {bare}:{port}"),
            )),
        }
    }

    /// The address to connect to for an allowed host: the operator's
    /// override, else the host's own resolution, every address public.
    pub async fn address(&self, host: &str, port: u16) -> Result<SocketAddr, Deny> {
        if let Some(addr) = self.overrides.get(host, port) {
            return Ok(addr);
        }
        resolve(host, port, true).await.map_err(|e| match e {
            ResolveError::Resolve(_) => Deny::new("resolve_failed", e.to_string()),
            ResolveError::NotPublic { .. } => Deny::new("not_public", e.to_string()),
        })
    }
}

/// Any spelling the C library would read as an IPv4 address (`2130706433`,
/// `0x7f.1`, `0177.0.0.1`): dot-separated decimal, octal or hex numbers.
fn looks_numeric(h: &str) -> bool {
    !h.is_empty()
        && h.split('.').all(|p| {
            let hex = p
                .strip_prefix("0x")
                .or_else(|| p.strip_prefix("0X"))
                .map(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
            hex.unwrap_or_else(|| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[&str]) -> Policy {
        Policy {
            rules: rules
                .iter()
                .map(|r| EgressRule::parse(r).unwrap())
                .collect(),
            overrides: Default::default(),
        }
    }

    #[test]
    fn hosts_are_checked_against_the_rules() {
        let p = policy(&["allowed.test", "*.cdn.test:8443"]);
        assert_eq!(
            p.check("Allowed.Test.", 443).unwrap(),
            ("allowed.test".to_string(), "allowed.test".to_string())
        );
        assert_eq!(p.check("a.cdn.test", 8443).unwrap().1, "*.cdn.test:8443");
        assert_eq!(p.check("other.test", 443).unwrap_err().code, "no_rule");
        assert_eq!(p.check("allowed.test", 22).unwrap_err().code, "no_rule");
        for ip in [
            "127.0.0.1",
            "[::1]",
            "::1",
            "2130706433",
            "0177.0.0.1",
            "0x7f000001",
            "169.254.169.254",
        ] {
            assert_eq!(p.check(ip, 80).unwrap_err().code, "ip_literal", "{ip}");
        }
        assert_eq!(p.check("a b", 80).unwrap_err().code, "bad_host");
    }

    #[tokio::test]
    async fn overrides_route_names_and_resolution_refuses_private_addresses() {
        let mut p = policy(&["localhost", "allowed.test"]);
        let e = p.address("localhost", 80).await.unwrap_err();
        assert_eq!(e.code, "not_public", "{e:?}");
        p.overrides = std::sync::Arc::new(
            Overrides::parse([
                "allowed.test=127.0.0.1:8080",
                "allowed.test:443=127.0.0.1:8443",
            ])
            .unwrap(),
        );
        assert_eq!(
            p.address("allowed.test", 80).await.unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            p.address("allowed.test", 443).await.unwrap(),
            "127.0.0.1:8443".parse().unwrap()
        );
        assert!(Overrides::parse(["nohost"]).is_err());
        assert!(Overrides::parse(["1.2.3.4=127.0.0.1:1"]).is_err());
        assert!(Overrides::parse(["a.test=nowhere"]).is_err());
    }
}

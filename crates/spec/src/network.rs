//! Network modes and egress rules: what a sandbox may reach.
//!
//! Pure data and matching, so every layer (CLI, server, the proxy) agrees on
//! what a rule means without touching a socket.

use serde::{Deserialize, Serialize};

/// Where the egress proxy listens inside a sandbox with an allowlist
/// (`127.0.0.1:EGRESS_PROXY_PORT`); `HTTP(S)_PROXY` point there.
pub const EGRESS_PROXY_PORT: u16 = 3128;

/// Ports a rule allows when it names none.
pub const DEFAULT_PORTS: [u16; 2] = [443, 80];

/// Most rules one sandbox may carry.
pub const MAX_RULES: usize = 256;

/// What the sandbox may reach over the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum NetworkMode {
    /// Only the sandbox's own loopback interface.
    #[default]
    None,
    /// Still no route out; an HTTP(S) proxy on the sandbox's loopback
    /// forwards connections to hosts that a rule allows.
    Allowlist {
        #[serde(default)]
        rules: Vec<EgressRule>,
    },
}

impl NetworkMode {
    pub fn rules(&self) -> Option<&[EgressRule]> {
        match self {
            NetworkMode::None => None,
            NetworkMode::Allowlist { rules } => Some(rules),
        }
    }
}

/// One allowlist entry: an exact host name or `*.suffix` (any name below
/// the suffix, not the suffix itself), and the ports it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRule {
    pub host: String,
    /// Empty means [`DEFAULT_PORTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("egress rule host {0:?} is not a host name or *.suffix (lower-case letters, digits, '-' and '.'; IP addresses are not allowed)")]
    BadHost(String),
    #[error("egress rule for {0:?}: port 0 is not a port")]
    BadPort(String),
    #[error("at most {MAX_RULES} egress rules")]
    TooMany,
}

impl EgressRule {
    /// Parses `host` or `host:port[,port...]` (the CLI's `--allow-host`).
    pub fn parse(s: &str) -> Result<EgressRule, RuleError> {
        let (host, ports) = match s.split_once(':') {
            None => (s, Vec::new()),
            Some((h, p)) => {
                let ports = p
                    .split(',')
                    .map(|x| x.trim().parse::<u16>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| RuleError::BadHost(s.to_string()))?;
                (h, ports)
            }
        };
        let rule = EgressRule {
            host: host.to_ascii_lowercase(),
            ports,
        };
        rule.validate()?;
        Ok(rule)
    }

    pub fn validate(&self) -> Result<(), RuleError> {
        let name = self.host.strip_prefix("*.").unwrap_or(&self.host);
        if !is_host_name(name) || (self.host.starts_with("*.") && !name.contains('.')) {
            return Err(RuleError::BadHost(self.host.clone()));
        }
        if self.ports.contains(&0) {
            return Err(RuleError::BadPort(self.host.clone()));
        }
        Ok(())
    }

    /// Does this rule allow `host` (already normalised by [`normalise_host`])
    /// on `port`?
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host_ok = match self.host.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => host == self.host,
        };
        let port_ok = if self.ports.is_empty() {
            DEFAULT_PORTS.contains(&port)
        } else {
            self.ports.contains(&port)
        };
        host_ok && port_ok
    }

    /// The rule as written (`host` or `host:p1,p2`), for logs.
    pub fn display(&self) -> String {
        if self.ports.is_empty() {
            self.host.clone()
        } else {
            let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            format!("{}:{}", self.host, ports.join(","))
        }
    }
}

/// Checks a list of rules (count and each rule).
pub fn validate_rules(rules: &[EgressRule]) -> Result<(), RuleError> {
    if rules.len() > MAX_RULES {
        return Err(RuleError::TooMany);
    }
    rules.iter().try_for_each(EgressRule::validate)
}

/// A DNS host name: labels of `[a-z0-9-]` (1-63 bytes, no leading or
/// trailing '-'), at most 253 bytes, and a last label that is not all
/// digits, so no spelling of an IPv4 address (`2130706433`, `0x7f.1`,
/// `127.1`) passes as a name.
pub fn is_host_name(h: &str) -> bool {
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = h.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    let last = labels[labels.len() - 1];
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    !numeric
}

/// Lower-cases a requested host and drops one trailing dot, so
/// `Allowed.Test.` and `allowed.test` are one name.
pub fn normalise_host(h: &str) -> String {
    h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A rule allowed it and bytes flowed.
    Allowed,
    /// Refused by policy (see `reason`).
    Denied,
    /// Allowed, but the destination could not be reached.
    Failed,
}

impl Outcome {
    /// The name used in the API, logs and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Allowed, Outcome::Denied, Outcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One connection attempt (CONNECT) or one plain-HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressEvent {
    /// Unix milliseconds when the attempt started.
    pub at_ms: u64,
    /// `CONNECT`, or the plain-HTTP method.
    pub method: String,
    /// The host as the sandbox asked for it (normalised).
    pub host: String,
    pub port: u16,
    /// The address actually connected to, when one was.
    pub addr: Option<String>,
    pub outcome: Outcome,
    /// The rule that allowed it.
    pub rule: Option<String>,
    /// Why it was denied or failed: a stable code (`no_rule`, `ip_literal`,
    /// `not_public`, `sni_mismatch`, `host_mismatch`, ...).
    pub reason: Option<String>,
    /// The same in words.
    pub detail: Option<String>,
    /// Bytes from the sandbox to the destination and back.
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> EgressRule {
        EgressRule::parse(s).unwrap()
    }

    #[test]
    fn exact_rules_match_only_their_host_and_ports() {
        let r = rule("allowed.test");
        assert!(r.allows("allowed.test", 443));
        assert!(r.allows("allowed.test", 80));
        assert!(!r.allows("allowed.test", 8080));
        assert!(!r.allows("sub.allowed.test", 443));
        assert!(!r.allows("allowed.test.evil", 443));
        assert!(!r.allows("xallowed.test", 443));
        let r = rule("api.test:8443,9000");
        assert!(r.allows("api.test", 8443) && r.allows("api.test", 9000));
        assert!(!r.allows("api.test", 443));
    }

    #[test]
    fn wildcard_rules_match_names_below_the_suffix_only() {
        let r = rule("*.pypi.test");
        assert!(r.allows("files.pypi.test", 443));
        assert!(r.allows("a.b.pypi.test", 443));
        assert!(!r.allows("pypi.test", 443));
        assert!(!r.allows("evilpypi.test", 443));
        assert!(!r.allows(".pypi.test", 443));
    }

    #[test]
    fn ip_addresses_and_junk_are_not_host_names() {
        for bad in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "127.1",
            "[::1]",
            "::1",
            "a..b",
            "-a.test",
            "a_b.test",
            "",
            "*.test",
            "*",
        ] {
            assert!(EgressRule::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(!is_host_name("169.254.169.254"));
        let upper = EgressRule {
            host: "A.test".into(),
            ports: vec![],
        };
        assert!(
            upper.validate().is_err(),
            "rules from JSON must be lower-case"
        );
        assert!(is_host_name("1password.test"));
        assert_eq!(normalise_host("Allowed.TEST."), "allowed.test");
    }

    #[test]
    fn rules_round_trip_as_json() {
        let mode = NetworkMode::Allowlist {
            rules: vec![rule("a.test"), rule("*.b.test:8443")],
        };
        let json = serde_json::to_string(&mode).unwrap();
        assert_eq!(
            json,
            r#"{"mode":"allowlist","rules":[{"host":"a.test"},{"host":"*.b.test","ports":[8443]}]}"#
        );
        assert_eq!(serde_json::from_str::<NetworkMode>(&json).unwrap(), mode);
        assert_eq!(rule("*.b.test:8443").display(), "*.b.test:8443");
    }
}

//! A tenant's deny and allow patterns, and how a command is matched
//! against them.
//!
//! Patterns are globs (the `globset` crate: `*` and `?` also match `/`,
//! `[abc]`, `{a,b}`, `\` escapes; case-sensitive), matched against the
//! whole command line: an argv joined by single spaces, or a shell line as
//! given (surrounding whitespace trimmed). When the first word is a path,
//! the line with that word cut to its base name is matched too, so
//! `rm -rf *` also catches `/bin/rm -rf /`. A pattern matches the whole
//! line: `curl*` catches `curl -s x`, `*curl*` catches it anywhere.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_protocol::Command;

/// Most patterns in each list.
pub const MAX_PATTERNS: usize = 256;
/// Longest pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;

/// A tenant's rules, as an admin sets them (`PUT
/// /v1/tenants/{id}/command-policy`) and as they are stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CommandRules {
    /// A command matching any of these is refused.
    pub deny: Vec<String>,
    /// When not empty, only commands matching one of these may run.
    pub allow: Vec<String>,
    /// Ask the server's hook program about commands the patterns let
    /// through (the server must have one configured).
    pub hook: bool,
}

impl CommandRules {
    /// No rule at all: every command runs (the policy of a tenant nobody
    /// set one for).
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty() && !self.hook
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("{list}: at most {MAX_PATTERNS} patterns")]
    TooMany { list: &'static str },
    #[error("{list}: an empty pattern matches nothing useful")]
    Empty { list: &'static str },
    #[error("{list}: pattern {pattern:?} is longer than {MAX_PATTERN_LEN} bytes")]
    TooLong { list: &'static str, pattern: String },
    #[error("{list}: pattern {pattern:?} holds a control character")]
    Control { list: &'static str, pattern: String },
    #[error("{list}: pattern {pattern:?} is not a valid glob: {why}")]
    Invalid {
        list: &'static str,
        pattern: String,
        why: String,
    },
}

/// What the patterns say about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Refused, and why (naming the pattern).
    Deny(String),
    /// The patterns let it through (the hook may still be asked).
    Pass,
}

/// Rules ready to match.
pub struct Compiled {
    deny: Patterns,
    allow: Patterns,
}

struct Patterns {
    set: GlobSet,
    source: Vec<String>,
}

impl Patterns {
    fn new(list: &'static str, patterns: &[String]) -> Result<Patterns, RuleError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(RuleError::TooMany { list });
        }
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            let pattern = p.clone();
            if p.trim().is_empty() {
                return Err(RuleError::Empty { list });
            }
            if p.len() > MAX_PATTERN_LEN {
                return Err(RuleError::TooLong { list, pattern });
            }
            if p.chars().any(char::is_control) {
                return Err(RuleError::Control { list, pattern });
            }
            let glob = GlobBuilder::new(p)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| RuleError::Invalid {
                    list,
                    pattern,
                    why: e.kind().to_string(),
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| RuleError::Invalid {
            list,
            pattern: String::new(),
            why: e.to_string(),
        })?;
        Ok(Patterns {
            set,
            source: patterns.to_vec(),
        })
    }

    /// The first pattern (in the list's order) matching any of `lines`.
    fn first_match(&self, lines: &[String]) -> Option<&str> {
        lines
            .iter()
            .filter_map(|l| self.set.matches(l.as_str()).into_iter().min())
            .min()
            .and_then(|i| self.source.get(i))
            .map(String::as_str)
    }
}

/// Checks and compiles `rules`.
pub fn compile(rules: &CommandRules) -> Result<Compiled, RuleError> {
    Ok(Compiled {
        deny: Patterns::new("deny", &rules.deny)?,
        allow: Patterns::new("allow", &rules.allow)?,
    })
}

impl Compiled {
    /// Any deny match refuses; else a non-empty allow list must match.
    pub fn decide(&self, command: &Command) -> Decision {
        let lines = lines(command);
        if let Some(p) = self.deny.first_match(&lines) {
            return Decision::Deny(format!("matches the deny pattern {p:?}"));
        }
        if !self.allow.source.is_empty() && self.allow.first_match(&lines).is_none() {
            return Decision::Deny("not on the allow list".into());
        }
        Decision::Pass
    }
}

/// The command line as it is matched, shown and audited.
pub fn command_line(command: &Command) -> String {
    match command {
        Command::Argv(argv) => argv.join(" "),
        Command::Shell(line) => line.trim().to_string(),
    }
}

/// The command line, and the same with its first word cut to its base
/// name when that word is a path.
fn lines(command: &Command) -> Vec<String> {
    let line = command_line(command);
    let (first, rest) = match line.split_once(char::is_whitespace) {
        Some((f, r)) => (f, Some(r)),
        None => (line.as_str(), None),
    };
    let base = first.rsplit('/').next().unwrap_or(first);
    if base == first || base.is_empty() {
        return vec![line];
    }
    let short = match rest {
        Some(r) => format!("{base} {r}"),
        None => base.to_string(),
    };
    vec![line, short]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(deny: &[&str], allow: &[&str]) -> Compiled {
        let s = |l: &[&str]| l.iter().map(|p| p.to_string()).collect();
        compile(&CommandRules {
            deny: s(deny),
            allow: s(allow),
            hook: false,
        })
        .unwrap()
    }

    fn argv(a: &[&str]) -> Command {
        Command::Argv(a.iter().map(|s| s.to_string()).collect())
    }

    fn sh(l: &str) -> Command {
        Command::Shell(l.into())
    }

    #[test]
    fn deny_patterns_match_the_whole_line_and_star_crosses_slashes() {
        let c = rules(&["rm -rf *", "*curl*"], &[]);
        let denied = |cmd: &Command| matches!(c.decide(cmd), Decision::Deny(_));
        assert!(denied(&argv(&["rm", "-rf", "/"])));
        assert!(denied(&sh("rm -rf /scratch/data")));
        assert!(
            denied(&sh("  rm -rf x  ")),
            "surrounding blanks are trimmed"
        );
        assert!(
            denied(&argv(&["/usr/bin/rm", "-rf", "/"])),
            "base name form"
        );
        assert!(denied(&sh("/bin/rm -rf /")));
        assert!(denied(&sh("echo hi; curl http://x")));
        assert!(denied(&sh("echo hi\ncurl http://x")), "* crosses newlines");
        assert!(denied(&sh("rm -rf /\necho done")));
        assert!(denied(&argv(&["sh", "-c", "curl x"])));
        assert!(!denied(&argv(&["rm", "-r", "x"])));
        assert!(
            !denied(&sh("echo rm -rf /")),
            "whole-line match: not at the start"
        );
        assert!(!denied(&argv(&["RM", "-rf", "/"])), "case-sensitive");
        assert_eq!(
            c.decide(&sh("curl -s x")),
            Decision::Deny("matches the deny pattern \"*curl*\"".into())
        );
    }

    #[test]
    fn allow_lists_admit_only_what_matches_and_deny_wins() {
        let c = rules(&["python3 -c *"], &["python3 *", "ls*"]);
        assert_eq!(c.decide(&argv(&["python3", "/input/a.py"])), Decision::Pass);
        assert_eq!(
            c.decide(&argv(&["/usr/bin/python3", "a.py"])),
            Decision::Pass
        );
        assert_eq!(c.decide(&argv(&["ls"])), Decision::Pass);
        assert_eq!(c.decide(&sh("ls -la /input")), Decision::Pass);
        assert_eq!(
            c.decide(&argv(&["bash", "-c", "python3 x"])),
            Decision::Deny("not on the allow list".into())
        );
        assert_eq!(
            c.decide(&argv(&["python3", "-c", "print(1)"])),
            Decision::Deny("matches the deny pattern \"python3 -c *\"".into())
        );
        assert_eq!(
            rules(&[], &[]).decide(&sh("anything at all")),
            Decision::Pass
        );
    }

    #[test]
    fn globs_have_classes_alternatives_and_escapes() {
        let c = rules(&["{wget,curl} *", "nc?*", "echo \\*"], &[]);
        assert!(matches!(c.decide(&sh("wget x")), Decision::Deny(_)));
        assert!(matches!(c.decide(&sh("ncat -l")), Decision::Deny(_)));
        assert!(matches!(c.decide(&argv(&["echo", "*"])), Decision::Deny(_)));
        assert_eq!(c.decide(&argv(&["echo", "x"])), Decision::Pass);
        assert_eq!(c.decide(&sh("nc")), Decision::Pass);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let bad = |deny: Vec<String>| {
            compile(&CommandRules {
                deny,
                ..Default::default()
            })
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        let e = bad(vec!["rm [".into()]);
        assert!(
            e.starts_with("deny: pattern \"rm [\" is not a valid glob"),
            "{e}"
        );
        assert!(bad(vec!["{a,b".into()]).contains("not a valid glob"));
        assert_eq!(
            bad(vec![" ".into()]),
            "deny: an empty pattern matches nothing useful"
        );
        assert!(bad(vec!["a\nb".into()]).contains("control character"));
        assert!(bad(vec!["x".repeat(MAX_PATTERN_LEN + 1)]).contains("longer than"));
        assert!(bad(vec!["x".into(); MAX_PATTERNS + 1]).contains("at most"));
    }

    #[test]
    fn the_line_and_its_base_name_form() {
        assert_eq!(lines(&argv(&["ls"])), ["ls"]);
        assert_eq!(lines(&argv(&["/bin/ls", "-l"])), ["/bin/ls -l", "ls -l"]);
        assert_eq!(lines(&sh("./run.sh")), ["./run.sh", "run.sh"]);
        assert_eq!(lines(&sh("dir/")), ["dir/"]);
    }
}

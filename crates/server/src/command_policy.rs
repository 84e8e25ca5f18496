//! Command policy: per-tenant rules every command passes before it reaches
//! a sandbox (execs, in the foreground, in the background or in a session,
//! and review jobs' commands at submit and when they start).
//!
//! In order: a deny pattern that matches refuses; else a non-empty allow
//! list that nothing matches refuses; else, when the tenant's policy says
//! `hook: true`, the operator's hook program decides; else the command
//! runs. No policy allows everything. Patterns (`rules`) are a guard
//! against accidents and a place for an organisation's rules, not an
//! isolation boundary: a shell can spell a command many ways, and the
//! sandbox is what contains it.
//!
//! A refusal is `403 command_denied` with the reason; a policy that cannot
//! be checked (the hook failed, or the policy wants a hook the server does
//! not have) is `503 policy_unavailable`, as the upload scanner's failures
//! are. Both are audited with the command line, and the command never
//! reaches the sandbox.

mod hook;
mod rules;

pub use hook::HookRequest;
pub use rules::{compile, CommandRules};

use crate::hostcmd::cut;
use crate::service;
use crate::service::audit::{self, Action, Audit};
use crate::state::AppState;
use hook::HookVerdict;
use rules::Decision;
use serde::Serialize;
use utoipa::ToSchema;
use warden_protocol::{Command, ExecRequest};
use warden_store::{StoreError, TenantId};

/// Longest command line quoted in an audit entry.
const MAX_AUDITED_LINE: usize = 500;

/// A tenant's policy as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandPolicy {
    /// Commands matching any of these globs are refused.
    pub deny: Vec<String>,
    /// When not empty, only commands matching one of these globs run.
    pub allow: Vec<String>,
    /// The server's hook decides about what the patterns let through.
    pub hook: bool,
    /// Whether this server has a hook configured (`[command_policy] hook`).
    pub hook_configured: bool,
}

impl CommandPolicy {
    fn new(st: &AppState, r: CommandRules) -> CommandPolicy {
        CommandPolicy {
            deny: r.deny,
            allow: r.allow,
            hook: r.hook,
            hook_configured: !st.cfg.command_policy.hook.is_empty(),
        }
    }
}

async fn rules_of(st: &AppState, t: &TenantId) -> Result<CommandRules, StoreError> {
    match st.meta.get_command_policy(t).await? {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| StoreError::Corrupt(format!("command policy of {t}: {e}"))),
        None => Ok(CommandRules::default()),
    }
}

/// The tenant's policy (the empty one when none was set).
pub async fn policy(st: &AppState, t: &TenantId) -> Result<CommandPolicy, StoreError> {
    Ok(CommandPolicy::new(st, rules_of(st, t).await?))
}

/// Checks and stores a tenant's rules (empty rules remove the policy). Bad
/// patterns, or `hook: true` on a server without a hook, are invalid.
pub async fn set_policy(
    st: &AppState,
    t: &TenantId,
    new: CommandRules,
) -> Result<CommandPolicy, service::Error> {
    compile(&new).map_err(|e| service::Error::invalid(e.to_string()))?;
    if new.hook && st.cfg.command_policy.hook.is_empty() {
        return Err(service::Error::invalid(
            "hook: this server has no command policy hook configured \
             ([command_policy] hook / WARDEN_COMMAND_POLICY_HOOK)",
        ));
    }
    let value = match new.is_empty() {
        true => None,
        false => Some(
            serde_json::to_value(&new)
                .map_err(|e| service::Error::internal("encoding the command policy", e))?,
        ),
    };
    st.meta.set_command_policy(t, value.as_ref()).await?;
    Ok(CommandPolicy::new(st, new))
}

/// Where a command is about to run.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Sandbox(&'a str),
    /// A review job: `None` at submit (no id yet), then its id.
    Review(Option<&'a str>),
}

/// One command about to be sent to a sandbox.
pub struct Exec<'a> {
    pub tenant: &'a TenantId,
    /// Who asked: an API key id, or `system` for a job's run.
    pub actor: &'a str,
    pub target: Target<'a>,
    pub command: &'a Command,
    pub cwd: Option<&'a str>,
    /// Names of the variables it gets (values are never shown to the hook).
    pub env: Vec<&'a str>,
    pub background: bool,
    pub session: Option<&'a str>,
}

impl<'a> Exec<'a> {
    /// An exec request about to be sent to `sandbox`.
    pub fn sandbox(
        tenant: &'a TenantId,
        actor: &'a str,
        sandbox: &'a str,
        req: &'a ExecRequest,
    ) -> Exec<'a> {
        Exec {
            tenant,
            actor,
            target: Target::Sandbox(sandbox),
            command: &req.command,
            cwd: req.cwd.as_deref(),
            env: req.env.iter().map(|(k, _)| k.as_str()).collect(),
            background: req.background,
            session: req.session.as_deref(),
        }
    }
}

/// [`enforce`] for a review job's command (at submit, `review` is `None`).
pub async fn enforce_review(
    st: &AppState,
    tenant: &TenantId,
    actor: &str,
    review: Option<&str>,
    spec: &crate::api_reviews::SubmitReview,
) -> Result<(), service::Error> {
    let Some(command) = spec.to_command() else {
        return Err(service::Error::invalid(
            "give exactly one of `command` (a non-empty argv) or `shell`",
        ));
    };
    let exec = Exec {
        tenant,
        actor,
        target: Target::Review(review),
        command: &command,
        cwd: None,
        env: spec.env.keys().map(String::as_str).collect(),
        background: false,
        session: None,
    };
    enforce(st, &exec).await
}

/// Why a command may not run.
enum Refusal {
    Denied(String),
    Unavailable(String),
}

/// Applies the tenant's policy to `exec`: `Ok` when it may run; otherwise
/// the refusal is audited and returned.
pub async fn enforce(st: &AppState, exec: &Exec<'_>) -> Result<(), service::Error> {
    let rules = rules_of(st, exec.tenant).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let line = rules::command_line(exec.command);
    let refusal = match decide(st, &rules, exec, &line).await {
        Ok(()) => return Ok(()),
        Err(r) => r,
    };
    let (outcome, error) = match refusal {
        Refusal::Denied(reason) => (
            format!("command_denied: {reason}"),
            service::Error::Denied(reason),
        ),
        Refusal::Unavailable(why) => {
            tracing::warn!(tenant = %exec.tenant, "command policy unavailable: {why}");
            (
                format!("policy_unavailable: {why}"),
                service::Error::PolicyUnavailable(why),
            )
        }
    };
    let (action, target) = match exec.target {
        Target::Sandbox(id) => (Action::ExecDenied, id.to_string()),
        Target::Review(id) => (Action::ReviewDenied, id.unwrap_or("(submit)").to_string()),
    };
    let outcome = format!("{outcome}; command: {}", cut(&line, MAX_AUDITED_LINE));
    let entry = Audit {
        actor: exec.actor,
        action,
        target: &target,
        outcome: &outcome,
    };
    audit::append(st.meta.as_ref(), exec.tenant, entry).await?;
    Err(error)
}

async fn decide(
    st: &AppState,
    rules: &CommandRules,
    exec: &Exec<'_>,
    line: &str,
) -> Result<(), Refusal> {
    // Stored rules were checked when set; a failure here is a bug or a
    // tampered row, and refuses rather than lets through.
    let compiled = compile(rules).map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if let Decision::Deny(reason) = compiled.decide(exec.command) {
        return Err(Refusal::Denied(reason));
    }
    if !rules.hook {
        return Ok(());
    }
    let cfg = &st.cfg.command_policy;
    if cfg.hook.is_empty() {
        return Err(Refusal::Unavailable(
            "the tenant's policy asks the hook, but this server has none configured".into(),
        ));
    }
    let (argv, shell) = match exec.command {
        Command::Argv(a) => (Some(a.as_slice()), None),
        Command::Shell(s) => (None, Some(s.as_str())),
    };
    let (kind, sandbox, review) = match exec.target {
        Target::Sandbox(id) => ("exec", Some(id), None),
        Target::Review(id) => ("review", None, id),
    };
    let req = HookRequest {
        kind,
        tenant: exec.tenant.as_str(),
        actor: exec.actor,
        sandbox,
        review,
        argv,
        shell,
        command_line: line,
        cwd: exec.cwd,
        env: exec.env.clone(),
        background: exec.background,
        session: exec.session,
    };
    match hook::ask(&cfg.hook, &req, cfg.hook_timeout()).await {
        HookVerdict::Allow => Ok(()),
        HookVerdict::Deny(reason) => Err(Refusal::Denied(format!("policy hook: {reason}"))),
        HookVerdict::Failed(why) => Err(Refusal::Unavailable(format!("policy hook failed: {why}"))),
    }
}

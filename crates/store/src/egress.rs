//! The egress log and a running sandbox's network rules.

use crate::{Result, SandboxId, TenantId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use warden_spec::EgressEvent;

/// One logged attempt and its position in the sandbox's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub event: EgressEvent,
}

#[async_trait]
pub trait EgressLog: Send + Sync {
    async fn append_egress(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        events: &[EgressEvent],
    ) -> Result<()>;
    /// Entries after `after` (a `seq`), oldest first.
    async fn list_egress(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EgressEntry>>;
    /// Replaces `spec.network` in the sandbox's record (after a rule
    /// change on the running sandbox). False if there is no such sandbox.
    async fn set_sandbox_network(
        &self,
        tenant: &TenantId,
        sandbox: &SandboxId,
        network: &serde_json::Value,
    ) -> Result<bool>;
}

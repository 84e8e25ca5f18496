//! One runtime over every isolation tier: each sandbox goes to the backend
//! its spec names (`isolation`), so a server offers both tiers through one
//! `Runtime` and nothing above this layer branches on the tier.
//!
//! The native tier is always there (the server cannot run without it). The
//! gVisor tier is optional: it is opened on first use, or ahead of time by
//! [`Tiers::probe`] (which a server runs in the background at start-up so
//! that the runsc platform probe never delays listening), and an unavailable
//! tier answers every start with [`RuntimeError::TierUnavailable`] and the
//! reason.

use crate::gvisor::{GvisorConfig, GvisorRuntime};
use crate::native::NativeRuntime;
use crate::{Runtime, RuntimeError, Sandbox};
use std::sync::OnceLock;
use warden_spec::{Isolation, SandboxSpec};

/// How a tier stands on this host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TierStatus {
    pub isolation: Isolation,
    pub available: bool,
    /// What it runs on when available (e.g. the gVisor platform), or why
    /// it is not.
    pub detail: String,
}

/// Whether the gVisor tier is offered.
#[derive(Debug, Clone)]
pub enum GvisorMode {
    /// Not offered; requests for it are refused with this reason.
    Off(String),
    /// Offered if runsc and a platform work here.
    Auto(GvisorConfig),
}

pub struct Tiers {
    native: NativeRuntime,
    gvisor_mode: GvisorMode,
    gvisor: OnceLock<Result<GvisorRuntime, String>>,
}

impl Tiers {
    pub fn new(native: NativeRuntime, gvisor: GvisorMode) -> Tiers {
        Tiers {
            native,
            gvisor_mode: gvisor,
            gvisor: OnceLock::new(),
        }
    }

    pub fn native(&self) -> &NativeRuntime {
        &self.native
    }

    /// The gVisor runtime, opened on the first call (which blocks, as do
    /// concurrent callers, until runsc and its platform have been checked).
    pub fn gvisor(&self) -> Result<&GvisorRuntime, RuntimeError> {
        let cfg = match &self.gvisor_mode {
            GvisorMode::Off(why) => return Err(unavailable(Isolation::Gvisor, why.clone())),
            GvisorMode::Auto(cfg) => cfg,
        };
        let opened = self
            .gvisor
            .get_or_init(|| GvisorRuntime::new(cfg.clone()).map_err(reason));
        opened
            .as_ref()
            .map_err(|why| unavailable(Isolation::Gvisor, why.clone()))
    }

    /// Opens every optional tier now and says how each stands.
    pub fn probe(&self) -> Vec<TierStatus> {
        let gvisor = match self.gvisor() {
            Ok(g) => TierStatus {
                isolation: Isolation::Gvisor,
                available: true,
                detail: format!("runsc, platform {}", g.platform()),
            },
            Err(e) => TierStatus {
                isolation: Isolation::Gvisor,
                available: false,
                detail: reason(e),
            },
        };
        vec![
            TierStatus {
                isolation: Isolation::Native,
                available: true,
                detail: "namespaces, cgroups, Landlock, seccomp".into(),
            },
            gvisor,
        ]
    }

    /// Checks that `isolation` can be served, opening it if need be.
    pub fn check(&self, isolation: Isolation) -> Result<(), RuntimeError> {
        match isolation {
            Isolation::Native => Ok(()),
            Isolation::Gvisor => self.gvisor().map(|_| ()),
        }
    }
}

/// Why a tier cannot run: the reason an unavailable tier gave, or the
/// error that stopped it from opening.
fn reason(e: RuntimeError) -> String {
    match e {
        RuntimeError::TierUnavailable { reason, .. } => reason,
        e => e.to_string(),
    }
}

fn unavailable(tier: Isolation, reason: String) -> RuntimeError {
    RuntimeError::TierUnavailable { tier, reason }
}

impl Runtime for Tiers {
    fn start(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, RuntimeError> {
        match spec.isolation {
            Isolation::Native => self.native.start(spec),
            Isolation::Gvisor => self.gvisor()?.start(spec),
        }
    }

    fn restore(
        &self,
        spec: &SandboxSpec,
        image: &std::path::Path,
    ) -> Result<Box<dyn Sandbox>, RuntimeError> {
        match spec.isolation {
            Isolation::Native => self.native.restore(spec, image),
            Isolation::Gvisor => self.gvisor()?.restore(spec, image),
        }
    }

    fn check(&self, isolation: Isolation) -> Result<(), RuntimeError> {
        Tiers::check(self, isolation)
    }

    fn probe(&self) -> Vec<TierStatus> {
        Tiers::probe(self)
    }
}

/// A one-line summary of tier statuses, e.g. for a start-up log.
pub fn describe(statuses: &[TierStatus]) -> String {
    statuses
        .iter()
        .map(|s| {
            let name = s.isolation.name();
            if s.available {
                format!("{name} (available: {})", s.detail)
            } else {
                format!("{name} (unavailable: {})", s.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

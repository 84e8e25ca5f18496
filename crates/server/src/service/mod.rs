//! The service layer: each use case once, whoever asks for it. The `/v1`
//! handlers, the E2B front door and the job worker translate their input
//! into a call here and its result into their own answer; the services
//! speak in their own typed errors ([`Error`]), and HTTP statuses are
//! chosen only at the edge (`crate::error`).
//!
//! Here: sandboxes (create, find, limits, labels, expiry), the streaming
//! of files in and out of them, their egress rules, uploads (checked,
//! signed URLs), reviews, secrets, snapshots, volumes, schedules, tenants and their keys, and the audit
//! log's entries.

pub mod audit;
pub mod egress;
pub mod error;
pub mod files;
pub mod fork;
pub mod image_build;
pub mod images;
pub mod pause;
pub mod pause_memory;
pub mod ports;
pub mod reviews;
pub mod sandbox_files;
pub mod sandboxes;
pub mod schedules;
pub mod secrets;
pub mod snapshots;
pub mod tenants;
pub mod volumes;

pub use error::{Error, Result};

/// The name of a tenant's volume or schedule (`kind`): 1-63 of
/// `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn check_resource_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{kind} name {name:?}: 1-63 of [A-Za-z0-9._-], starting with a letter or digit"
        )))
    }
}

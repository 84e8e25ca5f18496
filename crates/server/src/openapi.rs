//! The OpenAPI document: its header, tags and security here; its paths
//! from the handlers' annotations, through the route table
//! (`routes/table.rs`), which the router is made from too.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "Warden API", description = "Self-hosted, multi-tenant sandboxes for AI agents. See docs/api.md."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "admin", description = "Tenants and API keys (admin token)"),
        (name = "files", description = "A tenant's uploads"),
        (name = "sandboxes", description = "Interactive sandboxes"),
        (name = "sandbox files", description = "Files inside a sandbox, through its init"),
        (name = "code", description = "The code interpreter: stateful Python contexts in a sandbox"),
        (name = "sandbox ports", description = "HTTP and WebSocket to a server a sandbox runs, through its init"),
        (name = "reviews", description = "Review jobs: files + a command in, outputs back"),
        (name = "secrets", description = "A tenant's secrets (write-only values, given to sandboxes as env)"),
        (name = "images", description = "Images to start sandboxes from: the operator's, and a tenant's own built in cached steps"),
        (name = "snapshots", description = "A tenant's snapshots: a sandbox's files, kept to start new sandboxes from"),
        (name = "volumes", description = "A tenant's volumes: named persistent file systems that sandboxes mount"),
        (name = "schedules", description = "Review jobs submitted on a cron schedule, each slot once"),
        (name = "audit", description = "Audit chain and usage"),
        (name = "egress", description = "Egress allowlists: rules of a running sandbox, and the log of every attempt"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON (what `/openapi.json` serves and
/// `docs/openapi.json` holds).
pub fn document() -> String {
    let (_, mut doc) = OpenApiRouter::<crate::state::Shared>::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::table::v1(0))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_pretty_json().unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    /// The checked-in document is the generated one (regenerate with
    /// `UPDATE_OPENAPI=1 cargo test -p warden-server openapi`).
    #[test]
    fn checked_in_document_matches() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = super::document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p warden-server openapi"
        );
    }

    /// Every operation has its own id: SDK generators name methods by it.
    #[test]
    fn operation_ids_are_unique() {
        let doc: serde_json::Value =
            serde_json::from_str(&super::document()).expect("the document is JSON");
        let mut seen = std::collections::HashMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let id = op["operationId"].as_str().unwrap_or_default().to_string();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                    panic!("{id} names both {other} and {method} {path}");
                }
            }
        }
    }
}

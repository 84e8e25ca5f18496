//! The `/v1` API's routes, each declared once: the handler's
//! `#[utoipa::path]` annotation names its method and path, and `routes!`
//! makes both the axum route and the OpenAPI operation from it. The router
//! (`crate::router`) and the document (`crate::openapi`) are the two parts
//! of what [`v1`] returns.

use super::*;
use crate::state::Shared;
use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every `/v1` route and its operation. `max_json_bytes` bounds the bodies
/// of the JSON routes; streamed bodies (uploads, file writes) are bounded
/// by quotas and the sandbox's own disk limit instead.
pub fn v1(max_json_bytes: usize) -> OpenApiRouter<Shared> {
    // Routes whose bodies are JSON (or small): a declared length over the
    // limit is refused up front.
    let json = OpenApiRouter::new()
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::get, tenants::delete))
        .routes(routes!(tenants::disable))
        .routes(routes!(tenants::enable))
        .routes(routes!(tenants::create_key, tenants::list_keys))
        .routes(routes!(tenants::revoke_key))
        .routes(routes!(tenants::upload_policy, tenants::set_upload_policy))
        .routes(routes!(command_policy::get, command_policy::set))
        .routes(routes!(command_policy::own))
        .routes(routes!(isolation::list))
        .routes(routes!(files::upload_url))
        .routes(routes!(files::get, files::delete))
        .routes(routes!(files::content))
        .routes(routes!(sandboxes::create, sandboxes::list))
        .routes(routes!(sandboxes::get, sandboxes::delete))
        .routes(routes!(sandboxes::set_timeout))
        .routes(routes!(pause::pause))
        .routes(routes!(pause::resume))
        .routes(routes!(pause::fork))
        .routes(routes!(egress::set_network))
        .routes(routes!(egress::sandbox_log))
        .routes(routes!(exec::exec))
        .routes(routes!(code::run))
        .routes(routes!(code::create_context, code::list_contexts))
        .routes(routes!(code::delete_context))
        .routes(routes!(code::restart_context))
        .routes(routes!(processes::processes))
        .routes(routes!(processes::attach))
        .routes(routes!(processes::stdin))
        .routes(routes!(processes::signal))
        .routes(routes!(processes::wait))
        .routes(routes!(processes::resize))
        .routes(routes!(sbfiles::list))
        .routes(routes!(sbfiles::stat))
        .routes(routes!(sbfiles::mkdir))
        .routes(routes!(reviews::submit, reviews::list))
        .routes(routes!(reviews::get))
        .routes(routes!(reviews::cancel))
        .routes(routes!(reviews::logs))
        .routes(routes!(review_outputs::list, review_outputs::delete))
        .routes(routes!(reviews::deliveries))
        .routes(routes!(egress::review_log))
        .routes(routes!(reviews::webhook_secret))
        .routes(routes!(secrets::create, secrets::list))
        .routes(routes!(secrets::delete))
        .routes(routes!(volumes::create, volumes::list))
        .routes(routes!(volumes::get, volumes::delete))
        .routes(routes!(images::build, images::list))
        .routes(routes!(images::get, images::delete))
        .routes(routes!(snapshots::create))
        .routes(routes!(snapshots::list))
        .routes(routes!(snapshots::get, snapshots::delete))
        .routes(routes!(schedules::create, schedules::list))
        .routes(routes!(schedules::get, schedules::delete))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(audit::audit))
        .routes(routes!(audit::usage))
        .layer(DefaultBodyLimit::max(max_json_bytes))
        .layer(axum::middleware::from_fn_with_state(
            max_json_bytes,
            crate::error::refuse_oversized,
        ));
    let streamed = OpenApiRouter::new()
        .routes(routes!(files::upload, files::list))
        .routes(routes!(files::signed_upload))
        .routes(routes!(sbfiles::read, sbfiles::write, sbfiles::remove))
        .layer(DefaultBodyLimit::disable());
    with_ports(with_outputs_download(json.merge(streamed)))
}

/// A sandbox's ports take any method and any path below them
/// (`{*path}`), neither of which OpenAPI can say: registered by hand with
/// `any`, documented by the handler's annotation (as a GET). Bodies are
/// streamed through, so no JSON limit applies.
fn with_ports(router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
    let (schemas, paths, _) = routes!(ports::forward);
    let any = || axum::routing::any(ports::forward).layer(DefaultBodyLimit::disable());
    let mut router = router
        .route("/v1/sandboxes/{id}/ports/{port}", any())
        .route("/v1/sandboxes/{id}/ports/{port}/", any())
        .route("/v1/sandboxes/{id}/ports/{port}/{*path}", any());
    let doc = router.get_openapi_mut();
    doc.paths.paths.extend(paths.paths);
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas);
    router
}

/// An output's path may hold slashes (`charts/a.png`): axum matches it as
/// a wildcard, `{*path}`, which OpenAPI cannot say, so this one route is
/// registered by hand; its operation (path `{path}`) still comes from the
/// handler's annotation.
fn with_outputs_download(router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
    let (schemas, paths, method) = routes!(review_outputs::download);
    let mut router = router.route("/v1/reviews/{id}/outputs/{*path}", method);
    let doc = router.get_openapi_mut();
    doc.paths.paths.extend(paths.paths);
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas);
    router
}

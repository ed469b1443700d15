//! The OpenAPI document, generated from the handlers (utoipa), and the routes it
//! documents, grouped by who may call them.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{Shared, content, events, holds, items, log, ops, uploads};

/// The document's fixed parts; the paths come from [`Routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferry admin API",
        description = "Browse, download and delete the items Ferry received, put them on legal hold, and verify its signed log of what happened to them. Every `/api/` route needs `Authorization: Bearer <token>`. Every error has the shape `{\"error\": {\"status\", \"code\", \"message\"}}`."
    ),
    modifiers(&BearerScheme),
    components(schemas(ferry_http::ErrorBody, ferry_http::ErrorDetail, crate::model::ItemIdSchema, crate::content::ContentView)),
    tags(
        (name = "items", description = "Stored items: list, metadata, content, delete, legal holds, live updates"),
        (name = "log", description = "The tamper-evident log of what happens to items: receipts, signed checkpoints, inclusion and consistency proofs (open to anyone), entries and checks (token). See docs/receipts.md"),
        (name = "uploads", description = "Unfinished resumable uploads: list, cancel"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the routes refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description =
            Some("The admin token (`<data_dir>/admin.token` unless configured)".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The documented routes, by who may call them.
pub(crate) struct Routes {
    /// Routes that need the bearer token.
    pub protected: OpenApiRouter<Shared>,
    /// Routes open to anyone.
    pub open: OpenApiRouter<Shared>,
    /// `/metrics`: protected unless the settings make it public.
    pub metrics: OpenApiRouter<Shared>,
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes {
            protected: OpenApiRouter::new()
                .routes(routes!(items::list_items))
                .routes(routes!(items::get_item, items::delete_item))
                .routes(routes!(content::get_content))
                .routes(routes!(holds::hold_item, holds::release_item))
                .routes(routes!(events::events))
                .routes(routes!(log::item_receipt))
                .routes(routes!(log::log_entries))
                .routes(routes!(log::log_verify))
                .routes(routes!(uploads::list_uploads))
                .routes(routes!(uploads::cancel_upload)),
            open: OpenApiRouter::new()
                .routes(routes!(ferry_http::healthz))
                .routes(routes!(ops::readyz))
                .routes(routes!(log::log_key))
                .routes(routes!(log::log_checkpoint))
                .routes(routes!(log::log_inclusion))
                .routes(routes!(log::log_consistency)),
            metrics: OpenApiRouter::new().routes(routes!(ops::metrics)),
        }
    }
}

/// The admin API's OpenAPI document (committed as `openapi/admin.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let Routes {
        protected,
        open,
        metrics,
    } = Routes::new();
    let mut doc = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(protected)
        .merge(open)
        .merge(metrics)
        .into_openapi();
    ferry_http::document_rate_limits(&mut doc);
    doc
}

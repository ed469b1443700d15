//! The HTTP gateway: `POST /dict` and `POST /file` forwarded to the TCP server as a
//! native client, over a bounded pool of persistent sessions, and tus 1.0.0
//! resumable uploads at `/uploads` (the `tus` module) forwarded to the server's resumable
//! uploads.
//!
//! - [`app`] builds the router from a [`GatewayConfig`]; `ferry_http::serve` runs
//!   it on a bound listener, over HTTPS when given TLS files.
//! - A success is `201 Created` naming the stored item, with `Location` in the admin
//!   API; against a legacy server (which names nothing) the id is null and there is
//!   no `Location`.
//! - Every error, rejections included, has one JSON shape (`ferry_http::ErrorBody`);
//!   errors, the token check and `/healthz` are `ferry_http`'s, shared with the
//!   admin API.
//! - `/dict` bodies held in memory together never exceed
//!   [`GatewayConfig::dict_budget`].
//! - With [`GatewayConfig::cors_origins`], browsers on those origins may call it
//!   (CORS), with the tus headers allowed and exposed.
//! - The OpenAPI document ([`openapi`]) is at `/openapi.json`, its interactive page
//!   (offline) at `/docs`, and `/healthz` answers without a token.
//! - The upload page is at `/` (`page`: offline, on the tus endpoint), outside
//!   the OpenAPI document.

mod config;
mod created;
mod dict;
mod dict_body;
mod error;
mod file;
mod openapi;
mod ops;
mod page;
mod pool;
mod tus;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ferry_client::Options;
use ferry_http::TokenGuard;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use config::{
    BUDGET_WAIT, DEFAULT_ADMIN_URL, DEFAULT_LISTEN, DEFAULT_TUS_CHUNK_BYTES, GatewayConfig,
    POOL_IDLE_TIMEOUT, SHUTDOWN_DRAIN,
};
pub use created::Created;
pub use openapi::openapi_json;

use dict_body::DictBudget;
use pool::Pool;

/// The realm the gateway's `WWW-Authenticate` challenge names.
pub const REALM: &str = "ferry-gateway";

/// What every handler shares.
#[derive(Debug, Clone)]
struct AppState {
    config: Arc<GatewayConfig>,
    pool: Pool,
    budget: DictBudget,
    /// The tus uploads a request here is appending to.
    appending: tus::Appending,
}

/// The gateway's router. Sessions to the server are opened on first use.
pub fn app(config: GatewayConfig) -> Router {
    let options = Options {
        fernet: config.fernet.clone(),
        connect_timeout: config.upstream_timeout,
        reply_timeout: config.upstream_timeout,
        extensions: true,
    };
    let pool = Pool::new(
        config.server.clone(),
        options,
        config.pool_size,
        POOL_IDLE_TIMEOUT,
    );
    let state = AppState {
        budget: DictBudget::new(config.dict_budget),
        appending: tus::Appending::default(),
        config: Arc::new(config),
        pool,
    };
    let (router, doc) = split(routes(state.config.token.clone()));
    let rate_limit = state.config.rate_limit.clone();
    let token_required = state.config.token.is_some();
    let cors = tus::cors(&state.config.cors_origins);
    let router = router
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .merge(page::routes(token_required))
        // The handlers read bodies themselves, with their own limits.
        .layer(DefaultBodyLimit::disable());
    let mut router = ferry_http::finish(ferry_http::limited(router, rate_limit, "gateway"));
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    // Outside the router: the method is rewritten before routing.
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(tus::method_override)
            .service(router),
    )
}

/// The OpenAPI document of [`app`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    split(routes(None)).1
}

/// The router and its document. An empty body is an empty file (a legal, empty
/// transfer), so `POST /file` documents its body as optional, and so does a tus
/// creation (`POST /uploads`), which needs none.
fn split(routes: OpenApiRouter<AppState>) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = routes.split_for_parts();
    for path in ["/file", "/uploads"] {
        let body = doc
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.request_body.as_mut());
        if let Some(utoipa::openapi::RefOr::T(body)) = body {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
    ferry_http::document_rate_limits(&mut doc);
    (router, doc)
}

/// The routes; with a token, the transfers require it.
fn routes(token: Option<ferry_http::BearerToken>) -> OpenApiRouter<AppState> {
    let mut transfers = OpenApiRouter::new()
        .routes(routes!(dict::post_dict))
        .routes(routes!(file::post_file))
        .routes(routes!(ops::metrics));
    if let Some(token) = token.clone() {
        transfers = transfers.route_layer(axum::middleware::from_fn_with_state(
            TokenGuard::new(token, REALM),
            ferry_http::require_token,
        ));
    }
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(transfers)
        .merge(tus::routes(token))
        .routes(routes!(ferry_http::healthz))
}

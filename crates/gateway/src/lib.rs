//! The HTTP gateway: `POST /dict` and `POST /file` forwarded to the TCP server as a
//! native client, over a bounded pool of persistent sessions.
//!
//! - [`app`] builds the router from a [`GatewayConfig`]; [`serve`] runs it on a
//!   bound listener, over HTTPS when given [`TlsFiles`].
//! - A success is `201 Created` naming the stored item, with `Location` in the admin
//!   API; against a legacy server (which names nothing) the id is null and there is
//!   no `Location`.
//! - Every error, rejections included, has one JSON shape ([`error::ErrorBody`]).
//! - The OpenAPI document ([`openapi`]) is at `/openapi.json`, its interactive page
//!   (offline) at `/docs`, and `/healthz` answers without a token.

mod auth;
mod config;
mod created;
mod dict;
pub mod error;
mod file;
mod openapi;
mod pool;
mod rejection;
mod tls;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use ferry_client::Options;
use serde::Serialize;
use tower_http::trace::TraceLayer;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use config::{
    DEFAULT_ADMIN_URL, DEFAULT_LISTEN, GatewayConfig, GatewayToken, POOL_IDLE_TIMEOUT, TokenError,
};
pub use created::Created;
pub use openapi::openapi_json;
pub use tls::{TlsFiles, serve};

use pool::Pool;

/// What every handler shares.
#[derive(Debug, Clone)]
struct AppState {
    config: Arc<GatewayConfig>,
    pool: Pool,
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
        config: Arc::new(config),
        pool,
    };
    let (router, doc) = split(routes(state.clone()));
    router
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(rejection::not_found)
        .layer(axum::middleware::map_response(rejection::json_errors))
        // The handlers read bodies themselves, with their own limits.
        .layer(DefaultBodyLimit::disable())
        .layer(TraceLayer::new_for_http())
}

/// The OpenAPI document of [`app`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let state = AppState {
        config: Arc::new(GatewayConfig::default()),
        pool: Pool::new(String::new(), Options::default(), 1, POOL_IDLE_TIMEOUT),
    };
    split(routes(state)).1
}

/// The router and its document. An empty body is an empty file (a legal, empty
/// transfer), so `POST /file` documents its body as optional.
fn split(routes: OpenApiRouter<AppState>) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = routes.split_for_parts();
    let file_body = doc
        .paths
        .paths
        .get_mut("/file")
        .and_then(|item| item.post.as_mut())
        .and_then(|operation| operation.request_body.as_mut());
    if let Some(utoipa::openapi::RefOr::T(body)) = file_body {
        body.required = Some(utoipa::openapi::Required::False);
    }
    (router, doc)
}

fn routes(state: AppState) -> OpenApiRouter<AppState> {
    let transfers = OpenApiRouter::new()
        .routes(routes!(dict::post_dict))
        .routes(routes!(file::post_file))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_token,
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(transfers)
        .routes(routes!(healthz))
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Whether the gateway is up (it does not contact the server). Needs no token.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "Up", body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

//! The admin HTTP API and browser page for stored items.
//!
//! [`app`] builds the whole router: the JSON API under `/api/` (bearer token
//! required), `/healthz` and `/readyz` (open), `/metrics` (token unless
//! [`AdminState::metrics_public`]), the OpenAPI document at `/openapi.json`, an
//! offline Swagger UI at `/docs`, and the browser page at `/`. [`serve`] runs it
//! on a bound listener (over HTTPS when given TLS files) until a shutdown signal.
//!
//! Errors, authentication and serving are `ferry_http`'s, shared with the gateway:
//! every error, axum's rejections and the 404/405 fallbacks included, has one JSON
//! shape ([`ApiError`]). A stored record that fails authentication is never
//! served as bytes.

mod content;
mod error;
mod events;
mod extract;
mod holds;
mod items;
mod log;
mod model;
mod openapi;
mod ops;
mod page;
mod range;
mod token;
mod uploads;

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use axum::{Extension, Router, middleware};
use ferry_http::{BearerToken, ServeOptions, TokenGuard};
use ferry_store::{Notary, Retention, Store};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use ferry_http::{ApiError, ErrorBody, ErrorDetail};
pub use items::{DEFAULT_LIMIT, MAX_LIMIT};
pub use model::Item;
pub use openapi::openapi;
pub use token::{TOKEN_FILE_NAME, TokenError, load_or_generate_token};

/// The realm the admin API's `WWW-Authenticate` challenge names.
pub const REALM: &str = "ferry-admin";

/// The address the admin API listens on unless told otherwise: loopback only,
/// the port after the TCP server's.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(
    Ipv4Addr::LOCALHOST,
    ferry_protocol::DEFAULT_PORT + 1,
));

/// Everything the admin API needs.
pub struct AdminState {
    /// The item store.
    pub store: Arc<dyn Store>,
    /// The bearer token `/api/` requests must carry.
    pub token: BearerToken,
    /// The server's Prometheus recorder, rendered at `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Serve `/metrics` without the token.
    pub metrics_public: bool,
    /// Requests per client address; off when its rate is 0.
    pub rate_limit: ferry_http::RateLimit,
    /// The server's retention rules: each item shows when they expire it.
    pub retention: Retention,
    /// Signs the store's log, when the store keeps one: receipts, checkpoints
    /// and proofs are served from it.
    pub notary: Option<Arc<Notary>>,
}

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("token", &self.token)
            .field("metrics", &self.metrics.is_some())
            .field("metrics_public", &self.metrics_public)
            .field("rate_limit", &self.rate_limit)
            .field("retention", &self.retention.to_string())
            .finish_non_exhaustive()
    }
}

/// The state every handler shares.
pub(crate) type Shared = Arc<AdminState>;

/// The whole admin application, finished by [`ferry_http::finish`].
pub fn app(state: AdminState) -> Router {
    let metrics_public = state.metrics_public;
    let rate_limit = state.rate_limit.clone();
    let guard = TokenGuard::new(state.token.clone(), REALM);
    let shared: Shared = Arc::new(state);
    let openapi::Routes {
        mut protected,
        mut open,
        metrics,
    } = openapi::Routes::new();
    if metrics_public {
        open = open.merge(metrics);
    } else {
        protected = protected.merge(metrics);
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(
        guard,
        ferry_http::require_token,
    ));
    let (api, _) = OpenApiRouter::new()
        .merge(protected)
        .merge(open)
        .split_for_parts();
    let app = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .merge(page::routes());
    ferry_http::finish(ferry_http::limited(app, rate_limit, "admin")).with_state(shared)
}

/// Serves `app` on `listener` (see [`ferry_http::serve`]: header timeouts,
/// optional TLS) until `shutdown` resolves, then finishes the requests in flight
/// (live event streams end at once) and returns.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing, closing_rx) = watch::channel(false);
    let app = app.layer(Extension(events::Closing(closing_rx)));
    let shutdown = async move {
        shutdown.await;
        let _ = closing.send(true);
    };
    ferry_http::serve(listener, app, options, shutdown).await
}

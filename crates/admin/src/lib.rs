//! The admin HTTP API and browser page for stored items.
//!
//! [`app`] builds the whole router: the JSON API under `/api/` (bearer token
//! required), `/healthz` and `/readyz` (open), `/metrics` (token unless
//! [`AdminState::metrics_public`]), the OpenAPI document at `/openapi.json`, an
//! offline Swagger UI at `/docs`, and the browser page at `/`. [`serve`] runs it
//! on a bound listener until a shutdown signal.
//!
//! Every error, axum's rejections and the 404/405 fallbacks included, has one JSON
//! shape (see [`ApiError`]). A stored record that fails authentication is never
//! served as bytes.

mod auth;
mod content;
mod error;
mod events;
mod extract;
mod items;
mod model;
mod openapi;
mod ops;
mod page;
mod range;
mod token;

use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router, middleware};
use ferry_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use items::{DEFAULT_LIMIT, MAX_LIMIT};
pub use model::{ApiDataType, ApiSerialization, Item};
pub use openapi::openapi;
pub use token::{AdminToken, TOKEN_FILE_NAME, TokenError};

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
    pub token: AdminToken,
    /// The server's Prometheus recorder, rendered at `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Serve `/metrics` without the token.
    pub metrics_public: bool,
}

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("token", &self.token)
            .field("metrics", &self.metrics.is_some())
            .field("metrics_public", &self.metrics_public)
            .finish_non_exhaustive()
    }
}

/// The state every handler shares.
pub(crate) type Shared = Arc<AdminState>;

/// The whole admin application, with a `TraceLayer` (which never logs headers).
pub fn app(state: AdminState) -> Router {
    let metrics_public = state.metrics_public;
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
        shared.clone(),
        auth::require_token,
    ));
    let (api, _) = OpenApiRouter::new()
        .merge(protected)
        .merge(open)
        .split_for_parts();
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi()))
        .merge(page::routes())
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(shared)
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight (live event streams end at once) and returns.
///
/// A client must send each request's headers within `header_timeout`, or its
/// connection is closed: a peer that connects and stalls cannot hold a
/// connection (and its file descriptor) for ever.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (closing, closing_rx) = watch::channel(false);
    let app = app.layer(Extension(events::Closing(closing_rx)));
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = closing.send(true);
        stopper.graceful_shutdown(None);
    });
    let mut server =
        axum_server::from_tcp(listener.into_std()?)?.first_request_timeout(header_timeout);
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_timeout);
    server.handle(handle).serve(app.into_make_service()).await
}

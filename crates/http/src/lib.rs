//! The HTTP toolkit of Ferry's services (the admin API and the gateway), so that
//! both answer, authenticate and serve the same way:
//!
//! - one JSON error shape, [`ApiError`], which axum's rejections also take through
//!   the extractors of [`extract`]; a 5xx sends a generic message and
//!   [`log_failures`] logs its cause;
//! - one secret type, [`BearerToken`] (never in `Debug`, never serialized, wiped
//!   on drop, compared as digests in constant time), and one auth layer,
//!   [`require_token`];
//! - `/healthz` ([`healthz`]), `/metrics` in the Prometheus format ([`metrics_response`]) and the item kinds both APIs name ([`ApiDataType`],
//!   [`ApiSerialization`]);
//! - one [`serve`]: header timeouts, optional TLS, graceful shutdown;
//! - a [`ByteBudget`] bounding the memory of bodies buffered together;
//! - rate limits per client address and credential, [`RateLimiter`] and
//!   [`limit_rate`].

mod auth;
mod budget;
mod error;
pub mod extract;
mod health;
mod kinds;
mod metrics_text;
mod page;
mod rate;
mod serve;
mod token;

use axum::Router;
use tower_http::trace::TraceLayer;

pub use auth::{TokenGuard, require_token};
pub use budget::{BudgetError, ByteBudget, Reservation};
pub use error::{ApiError, ErrorBody, ErrorDetail, log_failures, method_not_allowed, not_found};
pub use health::{__path_healthz, Health, healthz};
pub use kinds::{ApiDataType, ApiSerialization};
pub use metrics_text::{PROMETHEUS_TEXT, metrics_response};
pub use page::page_asset;
pub use rate::{
    AddressBuckets, DEFAULT_BURST, RateLimit, RateLimiter, document_rate_limits, limit_rate,
    limited, spawn_forgetting,
};
pub use serve::{ServeOptions, TlsFiles, serve};
pub use token::{BearerToken, MAX_TOKEN_LEN, TokenError};

/// What every service's router ends with: JSON 404 and 405 fallbacks, failures
/// logged with their cause, and a `TraceLayer` (which never logs headers).
pub fn finish<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(log_failures))
        .layer(TraceLayer::new_for_http())
}

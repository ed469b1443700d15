//! The gateway's own metrics.

use axum::extract::State;
use axum::response::IntoResponse;
use ferry_http::ErrorBody;

use crate::AppState;

/// Prometheus metrics of the gateway: requests turned away by its rate limit
/// (`ferry_http_rate_limited_total`), tus requests by method and status
/// (`ferry_gateway_tus_requests_total`), bytes the server committed for them
/// (`ferry_gateway_tus_committed_bytes_total`) and uploads they finished
/// (`ferry_gateway_tus_uploads_finished_total`). Needs the bearer token when the gateway
/// has one.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "Missing or wrong bearer token (when the gateway has one)", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ferry_http::metrics_response(state.config.metrics.as_ref(), "")
}

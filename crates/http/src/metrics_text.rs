//! `/metrics` in the Prometheus text format, for both services.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;

/// The Prometheus text format's media type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the recorder holds, each line ended, then `extra` (lines of the service's
/// own, already in the text format).
pub fn metrics_response(handle: Option<&PrometheusHandle>, extra: &str) -> Response {
    let mut text = handle.map(PrometheusHandle::render).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(extra);
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response()
}

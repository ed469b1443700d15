//! Operational routes: readiness (`/readyz`) and Prometheus metrics (`/metrics`);
//! liveness (`/healthz`) is `ferry_http`'s.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use ferry_http::{ApiError, ErrorBody, Health};

use crate::Shared;
use crate::error::store_error;

/// Readiness: the store answers, and its log (if it keeps one) verifies.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 500, description = "The store does not answer", body = ErrorBody),
        (status = 503, description = "The store's log does not verify (`log_unverified`)", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(shared): State<Shared>) -> Result<Json<Health>, ApiError> {
    shared
        .store
        .list(&ferry_store::ListQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(store_error)?;
    if let Some(notary) = &shared.notary {
        let health = notary.health();
        if !health.ok {
            return Err(ApiError::Busy {
                code: "log_unverified",
                message: format!(
                    "the store's log does not verify: {}",
                    health.problems.join("; ")
                ),
                retry_after: std::time::Duration::from_secs(60),
            });
        }
    }
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus metrics: the server's transfer metrics and `ferry_items_stored`.
/// Needs the bearer token unless the server makes metrics public.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "Missing or wrong bearer token (unless metrics are public)", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let stored = shared.store.count().await;
    let extra = format!(
        "# HELP ferry_items_stored Items currently stored.\n# TYPE ferry_items_stored gauge\nferry_items_stored {stored}\n"
    );
    ferry_http::metrics_response(shared.metrics.as_ref(), &extra)
}

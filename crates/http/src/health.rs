//! `/healthz`: the process answers. It needs no token and contacts nothing.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer of the health routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `ready` from a readiness route.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

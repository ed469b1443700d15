//! The optional bearer token in front of `/dict` and `/file`. The token is compared
//! in constant time and never logged.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

const CHALLENGE: &str = "Bearer realm=\"ferry-gateway\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"ferry-gateway\", error=\"invalid_token\"";

/// Middleware: passes the request on when no token is configured or the request
/// carries `Authorization: Bearer <token>`; otherwise answers 401 with a challenge.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.config.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim());
    match presented {
        Some(credentials) if token.matches(credentials.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the bearer token is not valid", CHALLENGE_INVALID)
            .into_response(),
        None => ApiError::unauthorized(
            "this gateway needs Authorization: Bearer <token>",
            CHALLENGE,
        )
        .into_response(),
    }
}

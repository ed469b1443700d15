//! Gives every error response the one JSON shape, including those made outside the
//! handlers: axum's rejections (405, a bad query string, ...) and the 404 fallback.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The most of a foreign error body kept as the message.
const MAX_MESSAGE: usize = 4096;

/// Middleware (for `axum::middleware::map_response`): rewrites an error response
/// whose body is not already JSON into [`crate::error::ErrorBody`], keeping its
/// status, its headers (such as `Allow`) and its text as the message.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => default_message(status),
    };
    let rewritten = ApiError::new(status, ApiError::code_for(status), text).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(rewritten.headers().clone());
    let (_, body) = rewritten.into_parts();
    Response::from_parts(parts, Body::new(body))
}

fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed here".into(),
        StatusCode::NOT_FOUND => "no such route".into(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    }
}

/// The fallback route: a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route: see /docs",
    )
}

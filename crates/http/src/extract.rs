//! axum's extractors, rejecting with [`ApiError`] so that a bad query string, path
//! or JSON body gets the same JSON error shape as everything else.

use axum::extract::{FromRequest, FromRequestParts};

use crate::ApiError;

/// `axum::extract::Query`, rejecting with a 400 `bad_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path`, rejecting with a 400 `bad_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::Json`, rejecting with a 400 `invalid_json`, 415 or 422.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// The body length a request declares in `Content-Length`, if any.
pub fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

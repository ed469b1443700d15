//! The files of a browser page served from the binary: each with its type, the
//! page's Content Security Policy, and the headers both pages (the admin page
//! and the gateway's upload page) send.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// A page's file: `body` as `content_type`, under `csp`, not sniffed, sent
/// without a referrer, revalidated before reuse.
pub fn page_asset(
    csp: &'static str,
    content_type: &'static str,
    body: impl IntoResponse,
) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

//! The browser page at `/`: static HTML, CSS and JavaScript embedded in the
//! binary (no CDN, works offline). The page itself is open; it asks for the token
//! and sends it on every API call.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Shared;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const APP_JS: &str = include_str!("../assets/app.js");
const VERIFY_JS: &str = include_str!("../assets/verify.js");

/// Only this origin's own files; no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/`, `/assets/app.css`, `/assets/app.js` and `/assets/verify.js` (the
/// receipt checks, apart from the page's code).
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/verify.js",
            get(|| async { asset("text/javascript; charset=utf-8", VERIFY_JS) }),
        )
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    ferry_http::page_asset(CSP, content_type, body)
}

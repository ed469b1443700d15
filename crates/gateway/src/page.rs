//! The upload page at `/`: static HTML, CSS and JavaScript embedded in the binary
//! (no CDN, works offline), built on tus-js-client (vendored in
//! `assets/vendor/`, see its README) against the tus endpoint `/uploads` of the
//! same origin. The page itself is open; when the gateway has a token, the page
//! asks for it and sends it with every request. It is not an API: it stays out of
//! the OpenAPI document, as the admin's page does.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const UPLOAD_CSS: &str = include_str!("../assets/upload.css");
const UPLOAD_JS: &str = include_str!("../assets/upload.js");
const TUS_JS: &str = include_str!("../assets/vendor/tus.min.js");

/// Only this origin's own files; no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/`, `/assets/upload.css`, `/assets/upload.js` and
/// `/assets/vendor/tus.min.js`. `token_required` shows the page's token field
/// from the start (without it the field shows on a 401).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(token_required: bool) -> Router<S> {
    let index = INDEX_HTML.replace(
        "{{TOKEN}}",
        if token_required { "required" } else { "none" },
    );
    Router::new()
        .route(
            "/",
            get(move || {
                let index = index.clone();
                async move { asset("text/html; charset=utf-8", index) }
            }),
        )
        .route(
            "/assets/upload.css",
            get(|| async { asset("text/css; charset=utf-8", UPLOAD_CSS) }),
        )
        .route(
            "/assets/upload.js",
            get(|| async { asset("text/javascript; charset=utf-8", UPLOAD_JS) }),
        )
        .route(
            "/assets/vendor/tus.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", TUS_JS) }),
        )
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    ferry_http::page_asset(CSP, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::header;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_page_says_whether_a_token_is_required() {
        for (required, said) in [(true, "required"), (false, "none")] {
            let (status, headers, body) = get(routes(required), "/").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP);
            assert!(body.contains(&format!("data-token=\"{said}\"")), "{body}");
            assert!(!body.contains("{{"), "a placeholder is left: {body}");
        }
    }

    #[tokio::test]
    async fn every_script_and_style_the_page_names_is_served_from_here() {
        let (_, _, index) = get(routes(false), "/").await;
        let named: Vec<&str> = index
            .split(['"', '\''])
            .filter(|part| part.starts_with("/assets/"))
            .collect();
        assert_eq!(named.len(), 3, "{named:?}");
        for path in named {
            let (status, headers, body) = get(routes(false), path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(!body.is_empty(), "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        }
        assert!(!index.contains("http://") && !index.contains("https://"));
    }
}

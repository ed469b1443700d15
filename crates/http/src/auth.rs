//! Bearer-token authentication, as a middleware for the routes that need it.
//!
//! A missing, malformed or wrong token is a 401 with
//! `WWW-Authenticate: Bearer realm="<realm>"` and the JSON error; every wrong
//! token takes the same path ([`BearerToken::matches`]). Neither the expected
//! nor the presented token is ever logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::{ApiError, BearerToken};

/// What [`require_token`] checks: the token, and the realm its challenge names.
#[derive(Debug, Clone)]
pub struct TokenGuard {
    token: Arc<BearerToken>,
    realm: &'static str,
}

impl TokenGuard {
    /// A guard for `token`, announcing `realm` (e.g. `ferry-admin`) on a 401.
    pub fn new(token: BearerToken, realm: &'static str) -> TokenGuard {
        TokenGuard {
            token: Arc::new(token),
            realm,
        }
    }
}

/// Middleware (`axum::middleware::from_fn_with_state(guard, require_token)`): lets
/// the request through only with `Authorization: Bearer <the token>`.
pub async fn require_token(
    State(guard): State<TokenGuard>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // A request without a token is compared like one with a wrong token.
    let presented = bearer(request.headers()).unwrap_or("");
    if guard.token.matches(presented) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::Unauthorized { realm: guard.realm })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::HeaderValue;
    use axum::routing::get;
    use tower::ServiceExt;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_bearer_scheme_is_read_case_insensitively() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("Basic abc")), None);
        assert_eq!(bearer(&headers("Bearer")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn only_the_right_token_passes_and_a_refusal_names_the_realm() {
        let guard = TokenGuard::new(BearerToken::parse("s3cret").unwrap(), "test-realm");
        let app = Router::new()
            .route("/", get(|| async { "in" }))
            .route_layer(axum::middleware::from_fn_with_state(guard, require_token));
        for (authorization, status) in [
            (Some("Bearer s3cret"), 200),
            (Some("bearer s3cret"), 200),
            (Some("Bearer s3cre"), 401),
            (Some("Bearer s3crett"), 401),
            (Some("Bearer "), 401),
            (Some("Basic s3cret"), 401),
            (None, 401),
        ] {
            let mut request = axum::http::Request::get("/");
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = app
                .clone()
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{authorization:?}");
            if status == 401 {
                assert_eq!(
                    response.headers()[header::WWW_AUTHENTICATE],
                    r#"Bearer realm="test-realm""#
                );
            }
        }
    }
}

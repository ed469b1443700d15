//! The bearer token guards every `/api/` route.

use axum::body::Body;
use axum::http::{Request, header};

use crate::helpers::{TestApp, assert_error, header};

fn without_token(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn with_token(uri: &str, value: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, value)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn api_routes_without_a_token_are_401_with_a_bearer_challenge() {
    let app = TestApp::new().await;
    let id = app.put_text("secret").await.id;
    for uri in [
        "/api/items".to_owned(),
        format!("/api/items/{id}"),
        format!("/api/items/{id}/content"),
        "/api/events".to_owned(),
    ] {
        let response = app.send(without_token(&uri)).await;
        assert_eq!(
            header(&response, "www-authenticate"),
            r#"Bearer realm="ferry-admin""#,
            "{uri}"
        );
        assert_eq!(assert_error(response, 401).await, "unauthorized", "{uri}");
    }
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let app = TestApp::new().await;
    for value in [
        "Bearer wrong",
        "Bearer ",
        "Basic dGVzdA==",
        "Bearer test-token-012345678",
        "Bearer test-token-01234567890",
    ] {
        let response = app.send(with_token("/api/items", value)).await;
        assert_eq!(
            header(&response, "www-authenticate"),
            r#"Bearer realm="ferry-admin""#
        );
        assert_eq!(assert_error(response, 401).await, "unauthorized", "{value}");
    }
}

#[tokio::test]
async fn delete_without_a_token_deletes_nothing() {
    let app = TestApp::new().await;
    let id = app.put_text("keep me").await.id;
    let response = app
        .send(
            Request::delete(format!("/api/items/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(assert_error(response, 401).await, "unauthorized");
    assert_eq!(app.get(&format!("/api/items/{id}")).await.status(), 200);
}

#[tokio::test]
async fn the_page_health_and_openapi_are_open() {
    let app = TestApp::new().await;
    for uri in [
        "/",
        "/assets/app.js",
        "/assets/verify.js",
        "/assets/app.css",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/docs/",
    ] {
        assert_eq!(app.send(without_token(uri)).await.status(), 200, "{uri}");
    }
}

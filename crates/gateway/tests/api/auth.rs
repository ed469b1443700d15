//! The optional bearer token.

use axum::body::Body;
use axum::http::Request;
use ferry_gateway::{GatewayConfig, app};
use ferry_http::BearerToken;

use crate::support::*;

fn with_token(server: &FakeServer) -> axum::Router {
    app(GatewayConfig {
        token: Some(BearerToken::parse("s3cret").unwrap()),
        ..config(server)
    })
}

fn authorized(uri: &str, authorization: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .header("authorization", authorization)
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn without_a_token_the_transfers_are_401_with_a_challenge() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = with_token(&server);
    for uri in ["/dict", "/file"] {
        let response = call(&gateway, post(uri, "application/json", "{}")).await;
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_error(response, 401, "unauthorized").await;
    }
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(&with_token(&server), authorized("/dict", "Bearer s3cre")).await;
    assert_error(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_right_token_passes() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(&with_token(&server), authorized("/dict", "Bearer s3cret")).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn health_and_documentation_need_no_token() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = with_token(&server);
    for uri in ["/healthz", "/openapi.json", "/docs/"] {
        let response = call(&gateway, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), 200, "{uri}");
    }
}

#[tokio::test]
async fn no_token_configured_means_open_transfers() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(&gateway(&server), post("/dict", "application/json", "{}")).await;
    assert_eq!(response.status(), 201);
}

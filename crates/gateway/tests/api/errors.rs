//! Upstream failures and rejections, all in the one JSON error shape.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use ferry_gateway::{GatewayConfig, app};

use crate::support::*;

#[tokio::test]
async fn a_refusal_by_the_server_is_422_with_its_reason() {
    let server = FakeServer::start(
        Answer::Refuse("UnsupportedTransfer('Pickling disabled.')".into()),
        false,
    )
    .await;
    let response = call(
        &gateway(&server),
        post("/dict?format=pickle", "application/json", "{}"),
    )
    .await;
    let message = assert_error(response, 422, "upstream_refused").await;
    assert_eq!(message, "UnsupportedTransfer('Pickling disabled.')");
}

#[tokio::test]
async fn an_unreachable_server_is_503() {
    let gateway = app(GatewayConfig {
        server: closed_port().await,
        ..GatewayConfig::default()
    });
    let response = call(&gateway, post("/dict", "application/json", "{}")).await;
    assert_error(response, 503, "upstream_unavailable").await;
    let response = call(&gateway, post("/file", "application/octet-stream", "hello")).await;
    assert_error(response, 503, "upstream_unavailable").await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_504() {
    let server = FakeServer::start(Answer::Stall, false).await;
    let gateway = app(GatewayConfig {
        upstream_timeout: Duration::from_millis(300),
        ..config(&server)
    });
    let response = call(&gateway, post("/dict", "application/json", "{}")).await;
    assert_error(response, 504, "upstream_timeout").await;
    let response = call(&gateway, post("/file", "application/octet-stream", "hello")).await;
    assert_error(response, 504, "upstream_timeout").await;
}

#[tokio::test]
async fn a_server_that_stops_reading_a_file_is_504() {
    let server = FakeServer::start(Answer::Deaf, false).await;
    let gateway = app(GatewayConfig {
        upstream_timeout: Duration::from_millis(300),
        ..config(&server)
    });
    let file = vec![1u8; 64 * 1024 * 1024];
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        call(&gateway, post("/file", "application/octet-stream", file)),
    )
    .await
    .expect("the watchdog ends the transfer");
    assert_error(response, 504, "upstream_timeout").await;
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        Request::get("/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405_that_lists_the_allowed_ones() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        Request::get("/dict").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        response.headers().get("allow").is_some(),
        "{:?}",
        response.headers()
    );
    assert_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_bad_query_value_is_a_json_400() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/file?encrypt=maybe", "application/octet-stream", "x"),
    )
    .await;
    assert_error(response, 400, "bad_request").await;
}

#[tokio::test]
async fn health_needs_nothing_upstream() {
    let gateway = app(GatewayConfig {
        server: closed_port().await,
        ..GatewayConfig::default()
    });
    let response = call(
        &gateway,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["status"], "ok");
}

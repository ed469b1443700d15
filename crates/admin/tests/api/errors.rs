//! One JSON error shape everywhere, axum's rejections and fallbacks included.

use axum::body::Body;
use axum::http::Request;

use crate::helpers::{TestApp, assert_error, authorized};

#[tokio::test]
async fn a_bad_query_string_gets_the_json_error_shape() {
    let app = TestApp::new().await;
    assert_eq!(
        assert_error(app.get("/api/items?limit=abc").await, 400).await,
        "bad_request"
    );
    assert_eq!(
        assert_error(app.get("/api/items?limit=-1").await, 400).await,
        "bad_request"
    );
}

#[tokio::test]
async fn an_unknown_route_gets_a_json_404() {
    let app = TestApp::new().await;
    assert_eq!(assert_error(app.get("/nope").await, 404).await, "not_found");
    assert_eq!(
        assert_error(
            app.get("/api/items/01ARZ3NDEKTSV4RRFFQ69G5FAV/nope").await,
            404
        )
        .await,
        "not_found"
    );
    let open = app
        .send(Request::get("/favicon.ico").body(Body::empty()).unwrap())
        .await;
    assert_eq!(assert_error(open, 404).await, "not_found");
}

#[tokio::test]
async fn a_wrong_method_gets_a_json_405() {
    let app = TestApp::new().await;
    let response = app
        .send(
            authorized("POST", "/api/items")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    assert_eq!(assert_error(response, 405).await, "method_not_allowed");
    let response = app
        .send(Request::post("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(assert_error(response, 405).await, "method_not_allowed");
}

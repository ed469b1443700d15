//! Health, readiness and metrics.

use axum::body::Body;
use axum::http::Request;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::helpers::{Setup, TestApp, assert_error, body_bytes, body_json, header};

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let app = TestApp::new().await;
    let response = app
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(body_json(response).await["status"], "ok");
    let response = app
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(body_json(response).await["status"], "ready");
}

#[tokio::test]
async fn metrics_need_the_token_and_count_stored_items() {
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("ferry_transfers_total", "data_type" => "text", "format" => "txt", "result" => "ok").increment(3)
    });
    let app = TestApp::with(Setup {
        metrics: Some(recorder.handle()),
        ..Setup::default()
    })
    .await;
    app.put_text("a").await;
    app.put_text("b").await;

    let response = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(assert_error(response, 401).await, "unauthorized");

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    assert!(text.contains("ferry_items_stored 2\n"), "{text}");
    assert!(
        text.contains(r#"ferry_transfers_total{data_type="text",format="txt",result="ok"} 3"#),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_can_be_made_public() {
    let app = TestApp::with(Setup {
        metrics_public: true,
        ..Setup::default()
    })
    .await;
    let response = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        String::from_utf8(body_bytes(response).await)
            .unwrap()
            .contains("ferry_items_stored 0\n")
    );
}

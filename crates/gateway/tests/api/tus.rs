//! tus at `/uploads` against a legacy server, which ignores upload commands
//! (the real server's answers are tested end to end in `tests/e2e/tus.rs`).

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

#[tokio::test]
async fn a_legacy_server_takes_no_resumable_uploads_501() {
    let server = FakeServer::start(Answer::Legacy, false).await;
    let request = Request::post("/uploads")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "5")
        .body(Body::empty())
        .unwrap();
    let response = call(&gateway(&server), request).await;
    assert_eq!(response.headers()["tus-resumable"], "1.0.0");
    assert_error(response, 501, "uploads_unsupported").await;
    // Nothing was sent as a transfer.
    assert!(server.transfers().is_empty());
}

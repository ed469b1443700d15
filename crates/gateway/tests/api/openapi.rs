//! The committed OpenAPI document is the one the code generates.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::Request;

use crate::support::*;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/gateway.json")
}

#[test]
fn the_committed_openapi_document_is_up_to_date() {
    let generated = ferry_gateway::openapi_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from the generated document: run UPDATE_OPENAPI=1 cargo test -p ferry-gateway --test api openapi",
        path.display()
    );
}

#[test]
fn the_document_describes_bodies_errors_and_the_bearer_scheme() {
    let doc: serde_json::Value = serde_json::from_str(&ferry_gateway::openapi_json()).unwrap();
    let dict = &doc["paths"]["/dict"]["post"];
    assert!(dict["requestBody"]["content"]["application/json"].is_object());
    let file = &doc["paths"]["/file"]["post"]["requestBody"]["content"];
    assert!(
        file["application/octet-stream"].is_object() && file["multipart/form-data"].is_object()
    );
    for status in ["201", "401", "413", "415", "422", "503", "504"] {
        assert!(dict["responses"][status].is_object(), "{status}");
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_document_is_served_at_openapi_json() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let served = json(response).await;
    let generated: serde_json::Value =
        serde_json::from_str(&ferry_gateway::openapi_json()).unwrap();
    assert_eq!(served, generated);
}

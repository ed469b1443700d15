//! The committed OpenAPI document is the one the code generates, and is served.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::Request;

use crate::helpers::{TestApp, body_json};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/admin.json")
}

fn generated() -> String {
    let mut text = ferry_admin::openapi().to_pretty_json().unwrap();
    text.push('\n');
    text
}

#[test]
fn openapi_admin_json_matches_the_code() {
    let path = committed_path();
    let generated = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date: run `UPDATE_OPENAPI=1 cargo test -p ferry-admin --test api openapi` and commit it",
        path.display()
    );
}

#[tokio::test]
async fn openapi_json_is_served_and_documents_every_route() {
    let app = TestApp::new().await;
    let served = body_json(
        app.send(Request::get("/openapi.json").body(Body::empty()).unwrap())
            .await,
    )
    .await;
    let expected: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(served, expected);
    let paths = served["paths"].as_object().unwrap();
    for path in [
        "/api/items",
        "/api/items/{id}",
        "/api/items/{id}/content",
        "/api/events",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(paths["/api/items/{id}"].get("delete").is_some());
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(served["components"]["schemas"].get("ErrorBody").is_some());
}

//! Unfinished uploads through the API: listed with their progress, cancelled
//! (their staged data removed), a busy one refused.

use axum::body::Body;
use ferry_protocol::{DataType, Serialization};
use ferry_store::{NewItem, Store};

use crate::helpers::{TestApp, assert_error, authorized, body_json};

fn file(name: &str) -> NewItem {
    NewItem {
        data_type: DataType::Text,
        serialization: Serialization::Txt,
        encrypted_in_transit: true,
        peer: "127.0.0.1:4000".into(),
        name: Some(name.into()),
    }
}

#[tokio::test]
async fn unfinished_uploads_are_listed_and_cancelled() {
    let app = TestApp::new().await;
    let upload = app
        .store
        .upload_create(file("big.iso"), Some(100))
        .await
        .unwrap();
    let mut appender = app.store.upload_append(upload.id, 0).await.unwrap();
    appender.write(&[7; 40]).await.unwrap();
    appender.commit().await.unwrap();

    let listed = body_json(app.get("/api/uploads").await).await;
    let first = &listed["uploads"][0];
    assert_eq!(first["id"], upload.id.to_string());
    assert_eq!(first["name"], "big.iso");
    assert_eq!(
        (first["size"].as_u64(), first["expected_size"].as_u64()),
        (Some(40), Some(100))
    );
    assert!(first["last_activity"].is_string() && first["expires_at"].is_string());

    // Busy while bytes arrive.
    let busy = app.store.upload_append(upload.id, 40).await.unwrap();
    let uri = format!("/api/uploads/{}", upload.id);
    let cancel = || app.send(authorized("DELETE", &uri).body(Body::empty()).unwrap());
    let response = cancel().await;
    assert_eq!(response.status(), 409);
    assert_eq!(body_json(response).await["error"]["code"], "upload_busy");
    drop(busy);

    assert_eq!(cancel().await.status(), 204);
    assert_eq!(app.store.upload_info(upload.id).await.unwrap(), None);
    assert!(
        body_json(app.get("/api/uploads").await).await["uploads"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_error(cancel().await, 404).await;
    let bad = app
        .send(
            authorized("DELETE", "/api/uploads/nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_error(bad, 400).await;
    let anonymous = app
        .send(
            axum::http::Request::get("/api/uploads")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status(), 401);
}

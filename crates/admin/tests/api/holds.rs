//! Legal holds through the API, and each item's expiry under the retention rules.

use axum::body::Body;
use ferry_protocol::{DataType, Serialization};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Setup, TestApp, assert_error, authorized, body_json};

async fn send(app: &TestApp, method: &str, uri: &str) -> axum::http::Response<Body> {
    app.send(authorized(method, uri).body(Body::empty()).unwrap())
        .await
}

#[tokio::test]
async fn a_held_item_refuses_deletes_with_409_until_released() {
    let app = TestApp::new().await;
    let meta = app.put_text("keep me").await;
    let item = format!("/api/items/{}", meta.id);
    let hold = format!("{item}/hold");
    assert_eq!(body_json(app.get(&item).await).await["held"], false);

    let response = send(&app, "PUT", &hold).await;
    assert_eq!(response.status(), 200);
    let json = body_json(response).await;
    assert_eq!(json["id"], meta.id.to_string());
    assert_eq!(json["held"], true);
    assert_eq!(body_json(app.get(&item).await).await["held"], true);
    let listed = body_json(app.get("/api/items").await).await;
    assert_eq!(listed["items"][0]["held"], true);

    let response = send(&app, "DELETE", &item).await;
    assert_eq!(response.status(), 409);
    let json = body_json(response).await;
    assert_eq!(json["error"]["code"], "legal_hold");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("legal hold") && message.contains(&format!("DELETE {hold}")),
        "{message}"
    );
    assert_eq!(app.get(&item).await.status(), 200, "still there");

    let response = send(&app, "DELETE", &hold).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(response).await["held"], false);
    assert_eq!(send(&app, "DELETE", &item).await.status(), 204);
}

#[tokio::test]
async fn holds_of_unknown_or_malformed_ids_and_without_the_token_are_refused() {
    let app = TestApp::new().await;
    let unknown = ferry_store::ItemId::new();
    for method in ["PUT", "DELETE"] {
        let uri = format!("/api/items/{unknown}/hold");
        assert_eq!(
            assert_error(send(&app, method, &uri).await, 404).await,
            "not_found"
        );
        let bad = send(&app, method, "/api/items/nope/hold").await;
        assert_eq!(assert_error(bad, 400).await, "bad_request");
        let anonymous = axum::http::Request::builder()
            .method(method)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            assert_error(app.send(anonymous).await, 401).await,
            "unauthorized"
        );
    }
}

#[tokio::test]
async fn each_item_shows_when_the_retention_rules_expire_it() {
    let app = TestApp::with(Setup {
        retention: "text=7d,dict.xml=1h".parse().unwrap(),
        ..Setup::default()
    })
    .await;
    let text = app.put_text("seven days").await;
    let json_dict = app
        .put(
            DataType::Dictionary,
            Serialization::Json,
            "127.0.0.1:1",
            None,
            b"{}",
        )
        .await;
    let xml_dict = app
        .put(
            DataType::Dictionary,
            Serialization::Xml,
            "127.0.0.1:1",
            None,
            b"<dict/>",
        )
        .await;
    let expiry = |json: &serde_json::Value| {
        OffsetDateTime::parse(json["expires_at"].as_str().unwrap(), &Rfc3339).unwrap()
    };
    let json = body_json(app.get(&format!("/api/items/{}", text.id)).await).await;
    assert_eq!(expiry(&json), text.received_at + time::Duration::days(7));
    let json = body_json(app.get(&format!("/api/items/{}", xml_dict.id)).await).await;
    assert_eq!(
        expiry(&json),
        xml_dict.received_at + time::Duration::hours(1)
    );
    let json = body_json(app.get(&format!("/api/items/{}", json_dict.id)).await).await;
    assert!(json["expires_at"].is_null(), "no rule, no expiry: {json}");
    assert_eq!(json["held"], false);
}

//! `POST /dict`: formats, encryption, the 201 answer and the dictionary's own errors.

use std::sync::Arc;

use ferry_crypto::FernetKey;
use ferry_gateway::{GatewayConfig, app};
use ferry_protocol::{DataType, Serialization};
use serde_json::json;

use crate::support::*;

fn sample() -> serde_json::Value {
    json!({"name": "Ada", "age": 36, "tags": ["a", "b"], "nested": {"x": 1.5}})
}

#[tokio::test]
async fn each_format_with_and_without_encryption_sends_the_right_packets() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let key = Arc::new(FernetKey::generate());
    let gateway = app(GatewayConfig {
        fernet: Some(key.clone()),
        ..config(&server)
    });
    let dict = sample().as_object().unwrap().clone();
    let cases = [
        ("json", Serialization::Json),
        ("binary", Serialization::Binary),
        ("pickle", Serialization::Binary),
        ("xml", Serialization::Xml),
    ];
    for (format, serialization) in cases {
        for encrypt in [false, true] {
            let uri = format!("/dict?format={format}&encrypt={encrypt}");
            let response = call(
                &gateway,
                post(&uri, "application/json", sample().to_string()),
            )
            .await;
            assert_eq!(response.status(), 201, "{uri}");
            let transfer = server.transfers().pop().unwrap();
            assert_eq!(transfer.meta.data_type(), DataType::Dictionary);
            assert_eq!(transfer.meta.serialization(), serialization, "{uri}");
            assert_eq!(transfer.meta.encrypted(), encrypt, "{uri}");
            assert_eq!(transfer.name, None);
            let expected = ferry_codec::encode(serialization, &dict).unwrap();
            assert_eq!(
                transfer.plaintext(encrypt.then_some(&*key)),
                expected,
                "{uri}"
            );
        }
    }
}

#[tokio::test]
async fn the_defaults_are_json_and_no_encryption() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict", "application/json", r#"{"a": 1}"#),
    )
    .await;
    assert_eq!(response.status(), 201);
    let transfer = &server.transfers()[0];
    assert_eq!(transfer.meta.serialization(), Serialization::Json);
    assert!(!transfer.meta.encrypted());
    assert!(transfer.hello, "the gateway asks for extended replies");
    assert_eq!(transfer.plaintext(None), br#"{"a": 1}"#);
}

#[tokio::test]
async fn a_stored_dictionary_is_201_with_its_location_and_description() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict?format=xml", "application/json", r#"{"a": 1}"#),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        format!("http://admin.test:6869/api/items/{FAKE_ID}")
    );
    let body = json(response).await;
    let size = ferry_codec::encode(Serialization::Xml, json!({"a": 1}).as_object().unwrap())
        .unwrap()
        .len();
    assert_eq!(
        body,
        json!({"id": FAKE_ID, "data_type": "dictionary", "format": "xml", "encrypted": false, "size": size, "sha256": "ab".repeat(32), "receipt": null})
    );
}

#[tokio::test]
async fn a_legacy_server_gives_a_null_id_and_no_location() {
    let server = FakeServer::start(Answer::Legacy, false).await;
    let response = call(
        &gateway(&server),
        post("/dict", "application/json", r#"{"a": 1}"#),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("location").is_none());
    let body = json(response).await;
    assert_eq!(body["id"], serde_json::Value::Null);
    assert_eq!(body["size"], 8);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422_saying_what_it_is() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict", "application/json", "[1, 2]"),
    )
    .await;
    let message = assert_error(response, 422, "not_an_object").await;
    assert!(message.contains("an array"), "{message}");
    assert!(server.transfers().is_empty());
}

#[tokio::test]
async fn a_key_xml_cannot_carry_is_422_naming_the_key() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post(
            "/dict?format=xml",
            "application/json",
            r#"{"1 bad key": 1}"#,
        ),
    )
    .await;
    let message = assert_error(response, 422, "unsupported_by_xml").await;
    assert!(message.contains("1 bad key"), "{message}");
    assert!(server.transfers().is_empty());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict", "application/json", "{\"a\":"),
    )
    .await;
    assert_error(response, 400, "invalid_json").await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict", "text/plain", r#"{"a": 1}"#),
    )
    .await;
    assert_error(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_dictionary_over_the_limit_is_413() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = app(GatewayConfig {
        max_dict_bytes: 10,
        ..config(&server)
    });
    let body = r#"{"a": "0123456789"}"#;
    assert_error(
        call(&gateway, post("/dict", "application/json", body)).await,
        413,
        "payload_too_large",
    )
    .await;
    // Without a Content-Length the limit holds while reading.
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
    let request = post(
        "/dict",
        "application/json",
        axum::body::Body::from_stream(stream),
    );
    assert_error(call(&gateway, request).await, 413, "payload_too_large").await;
    assert!(server.transfers().is_empty());
}

#[tokio::test]
async fn encryption_without_a_key_is_422() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict?encrypt=true", "application/json", "{}"),
    )
    .await;
    assert_error(response, 422, "encryption_unavailable").await;
}

#[tokio::test]
async fn an_unknown_format_is_400() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/dict?format=yaml", "application/json", "{}"),
    )
    .await;
    assert_error(response, 400, "bad_request").await;
}

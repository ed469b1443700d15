//! Content: bytes, headers, ranges and the JSON view of dictionaries.

use ferry_protocol::{DataType, Serialization};

use crate::helpers::{TestApp, assert_error, body_bytes, body_json, header};

#[tokio::test]
async fn content_is_the_original_bytes_with_type_length_and_file_name() {
    let app = TestApp::new().await;
    let text = "héllo wörld\n".repeat(10_000);
    let meta = app.put_text(&text).await;
    let response = app.get(&format!("/api/items/{}/content", meta.id)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(header(&response, "content-length"), text.len().to_string());
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"
    );
    assert_eq!(body_bytes(response).await, text.as_bytes());
}

#[tokio::test]
async fn each_serialization_has_its_media_type_and_an_id_based_file_name() {
    let app = TestApp::new().await;
    for (serialization, media_type, extension) in [
        (Serialization::Json, "application/json", "json"),
        (Serialization::Xml, "application/xml", "xml"),
        (Serialization::Binary, "application/x-python-pickle", "pkl"),
    ] {
        let meta = app
            .put(
                DataType::Dictionary,
                serialization,
                "127.0.0.1:1",
                None,
                b"x",
            )
            .await;
        let response = app.get(&format!("/api/items/{}/content", meta.id)).await;
        assert_eq!(header(&response, "content-type"), media_type);
        assert!(
            header(&response, "content-disposition")
                .contains(&format!("filename=\"{}.{extension}\"", meta.id))
        );
    }
}

#[tokio::test]
async fn byte_ranges_give_206_with_content_range() {
    let app = TestApp::new().await;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let meta = app
        .put(
            DataType::Text,
            Serialization::Txt,
            "127.0.0.1:1",
            None,
            &content,
        )
        .await;
    let uri = format!("/api/items/{}/content", meta.id);
    for (range, expected, content_range) in [
        ("bytes=0-9", 0..10, "bytes 0-9/200000"),
        (
            "bytes=65530-131080",
            65530..131081,
            "bytes 65530-131080/200000",
        ),
        (
            "bytes=199990-",
            199990..200000,
            "bytes 199990-199999/200000",
        ),
        ("bytes=-5", 199995..200000, "bytes 199995-199999/200000"),
        (
            "bytes=150000-999999",
            150000..200000,
            "bytes 150000-199999/200000",
        ),
    ] {
        let response = app.get_range(&uri, range).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(header(&response, "content-range"), content_range);
        assert_eq!(
            header(&response, "content-length"),
            expected.len().to_string()
        );
        assert_eq!(body_bytes(response).await, &content[expected], "{range}");
    }
}

#[tokio::test]
async fn an_unsatisfiable_range_is_a_416_naming_the_size() {
    let app = TestApp::new().await;
    let meta = app.put_text("0123456789").await;
    let uri = format!("/api/items/{}/content", meta.id);
    for range in ["bytes=10-", "bytes=20-30", "bytes=-0"] {
        let response = app.get_range(&uri, range).await;
        assert_eq!(header(&response, "content-range"), "bytes */10");
        assert_eq!(assert_error(response, 416).await, "range_not_satisfiable");
    }
}

#[tokio::test]
async fn a_range_header_not_understood_serves_everything() {
    let app = TestApp::new().await;
    let meta = app.put_text("0123456789").await;
    let response = app
        .get_range(&format!("/api/items/{}/content", meta.id), "bytes=0-1,4-5")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_bytes(response).await, b"0123456789");
}

#[tokio::test]
async fn as_json_shows_a_dictionary_as_json_whatever_it_arrived_as() {
    let app = TestApp::new().await;
    let mut dict = serde_json::Map::new();
    dict.insert("zeta".into(), "last".into());
    dict.insert("alpha".into(), "1".into());
    for serialization in [
        Serialization::Json,
        Serialization::Xml,
        Serialization::Binary,
    ] {
        let bytes = ferry_codec::encode(serialization, &dict).unwrap();
        let meta = app
            .put(
                DataType::Dictionary,
                serialization,
                "127.0.0.1:1",
                None,
                &bytes,
            )
            .await;
        let response = app
            .get(&format!("/api/items/{}/content?as=json", meta.id))
            .await;
        assert_eq!(response.status(), 200, "{serialization:?}");
        assert_eq!(header(&response, "content-type"), "application/json");
        let json = body_json(response).await;
        assert_eq!(
            json,
            serde_json::Value::Object(dict.clone()),
            "{serialization:?}"
        );
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["zeta", "alpha"],
            "key order is kept ({serialization:?})"
        );
    }
}

#[tokio::test]
async fn as_json_on_a_text_item_is_a_400() {
    let app = TestApp::new().await;
    let meta = app.put_text("just text").await;
    assert_eq!(
        assert_error(
            app.get(&format!("/api/items/{}/content?as=json", meta.id))
                .await,
            400
        )
        .await,
        "bad_request"
    );
    assert_eq!(
        assert_error(
            app.get(&format!("/api/items/{}/content?as=yaml", meta.id))
                .await,
            400
        )
        .await,
        "bad_request"
    );
}

#[tokio::test]
async fn an_empty_item_has_empty_content() {
    let app = TestApp::new().await;
    let meta = app.put_text("").await;
    let response = app.get(&format!("/api/items/{}/content", meta.id)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "0");
    assert!(body_bytes(response).await.is_empty());
}

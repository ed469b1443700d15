//! Listing, metadata and delete.

use std::collections::HashSet;

use ferry_protocol::{DataType, Serialization};

use crate::helpers::{TestApp, assert_error, authorized, body_json};

fn ids(json: &serde_json::Value) -> Vec<String> {
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn items_are_listed_newest_first() {
    let app = TestApp::new().await;
    let first = app.put_text("one").await;
    let second = app.put_text("two").await;
    let third = app.put_text("three").await;

    let json = body_json(app.get("/api/items").await).await;
    assert_eq!(
        ids(&json),
        [
            third.id.to_string(),
            second.id.to_string(),
            first.id.to_string()
        ]
    );
    assert_eq!(json["next"], serde_json::Value::Null);
    let item = &json["items"][2];
    assert_eq!(item["data_type"], "text");
    assert_eq!(item["serialization"], "txt");
    assert_eq!(item["size"], 3);
    assert_eq!(item["name"], "notes.txt");
    assert_eq!(item["content_type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn paging_through_1000_items_returns_each_exactly_once() {
    let app = TestApp::new().await;
    let writes = (0..1000).map(|i| app.put_text(format!("item {i}")));
    let stored: HashSet<String> = futures::future::join_all(writes)
        .await
        .into_iter()
        .map(|m| m.id.to_string())
        .collect();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/items?limit=70&cursor={c}"),
            None => "/api/items?limit=70".to_owned(),
        };
        let json = body_json(app.get(&uri).await).await;
        let page = ids(&json);
        let full = page.len() == 70;
        seen.extend(page);
        pages += 1;
        match json["next"].as_str() {
            Some(next) => {
                assert!(full, "only the last page is short");
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 1000usize.div_ceil(70));
    assert_eq!(seen.len(), 1000);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), stored);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest (greatest ULID) first across pages");
    assert_eq!(
        ids(&body_json(app.get("/api/items?limit=1000").await).await).len(),
        1000,
        "the largest page holds 1000"
    );
}

#[tokio::test]
async fn the_default_page_holds_50_items_and_limits_over_1000_are_refused() {
    let app = TestApp::new().await;
    futures::future::join_all((0..60).map(|i| app.put_text(i.to_string()))).await;
    let json = body_json(app.get("/api/items").await).await;
    assert_eq!(ids(&json).len(), 50);
    assert!(json["next"].is_string());
    assert_eq!(
        assert_error(app.get("/api/items?limit=1001").await, 400).await,
        "bad_request"
    );
    assert_eq!(
        assert_error(app.get("/api/items?limit=0").await, 400).await,
        "bad_request"
    );
    assert_eq!(
        assert_error(app.get("/api/items?limit=x").await, 400).await,
        "bad_request"
    );
    assert_eq!(
        assert_error(app.get("/api/items?cursor=nope").await, 400).await,
        "bad_request"
    );
}

#[tokio::test]
async fn each_filter_selects_only_matching_items() {
    let app = TestApp::new().await;
    let text = app
        .put(
            DataType::Text,
            Serialization::Txt,
            "10.0.0.1:5000",
            Some("Minutes-2026.txt"),
            b"hello",
        )
        .await;
    let json = app
        .put(
            DataType::Dictionary,
            Serialization::Json,
            "10.0.0.2:5000",
            None,
            br#"{"a": 1}"#,
        )
        .await;
    let xml = app
        .put(
            DataType::Dictionary,
            Serialization::Xml,
            "10.0.0.2:6000",
            None,
            b"<root><a>1</a></root>",
        )
        .await;

    let listed = |uri: &'static str| {
        let app = &app;
        async move { ids(&body_json(app.get(uri).await).await) }
    };
    assert_eq!(
        listed("/api/items?data_type=text").await,
        [text.id.to_string()]
    );
    assert_eq!(
        listed("/api/items?data_type=dictionary").await,
        [xml.id.to_string(), json.id.to_string()]
    );
    assert_eq!(
        listed("/api/items?serialization=xml").await,
        [xml.id.to_string()]
    );
    assert_eq!(
        listed("/api/items?source=10.0.0.1").await,
        [text.id.to_string()]
    );
    assert_eq!(
        listed("/api/items?source=10.0.0.2").await,
        [xml.id.to_string(), json.id.to_string()]
    );
    assert_eq!(
        listed("/api/items?name=minutes").await,
        [text.id.to_string()]
    );
    assert_eq!(listed("/api/items?name=agenda").await, Vec::<String>::new());
    assert_eq!(
        listed("/api/items?data_type=dictionary&serialization=json").await,
        [json.id.to_string()]
    );

    let at = |m: &ferry_store::ItemMeta| {
        m.received_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let since = format!("/api/items?since={}", at(&json).replace('+', "%2B"));
    assert_eq!(
        ids(&body_json(app.get(&since).await).await),
        [xml.id.to_string(), json.id.to_string()]
    );
    let until = format!("/api/items?until={}", at(&json).replace('+', "%2B"));
    assert_eq!(
        ids(&body_json(app.get(&until).await).await),
        [text.id.to_string()]
    );
    assert_eq!(
        assert_error(app.get("/api/items?since=yesterday").await, 400).await,
        "bad_request"
    );
    let unencoded_plus =
        body_json(app.get("/api/items?since=2000-01-01T00:00:00+00:00").await).await;
    assert_eq!(ids(&unencoded_plus).len(), 3);
    assert_eq!(
        assert_error(app.get("/api/items?data_type=image").await, 400).await,
        "bad_request"
    );
}

#[tokio::test]
async fn an_items_metadata_is_served_by_id() {
    let app = TestApp::new().await;
    let meta = app
        .put(
            DataType::Dictionary,
            Serialization::Binary,
            "[::1]:7000",
            None,
            b"\x80\x03}q\x00.",
        )
        .await;
    let json = body_json(app.get(&format!("/api/items/{}", meta.id)).await).await;
    assert_eq!(json["id"], meta.id.to_string());
    assert_eq!(json["data_type"], "dictionary");
    assert_eq!(json["serialization"], "binary");
    assert_eq!(json["peer"], "[::1]:7000");
    assert_eq!(json["name"], serde_json::Value::Null);
    assert_eq!(json["sha256"], meta.sha256);
    assert_eq!(json["key_id"], meta.key_id);
    assert_eq!(json["encrypted_in_transit"], false);
    assert_eq!(json["content_type"], "application/x-python-pickle");
    assert_eq!(json["file_name"], format!("{}.pkl", meta.id));
    assert!(
        time::OffsetDateTime::parse(
            json["received_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
}

#[tokio::test]
async fn a_malformed_id_is_a_400_and_an_unknown_one_a_404() {
    let app = TestApp::new().await;
    for uri in [
        "/api/items/not-an-id",
        "/api/items/..%2F..%2Fetc%2Fpasswd",
        "/api/items/not-an-id/content",
    ] {
        assert_eq!(
            assert_error(app.get(uri).await, 400).await,
            "bad_request",
            "{uri}"
        );
    }
    let unknown = ferry_store::ItemId::new();
    assert_eq!(
        assert_error(app.get(&format!("/api/items/{unknown}")).await, 404).await,
        "not_found"
    );
    assert_eq!(
        assert_error(app.get(&format!("/api/items/{unknown}/content")).await, 404).await,
        "not_found"
    );
}

#[tokio::test]
async fn a_deleted_item_is_gone() {
    let app = TestApp::new().await;
    let meta = app.put_text("bye").await;
    let uri = format!("/api/items/{}", meta.id);
    let delete = || {
        app.send(
            authorized("DELETE", &uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
    };
    let response = delete().await;
    assert_eq!(response.status(), 204);
    assert_eq!(assert_error(app.get(&uri).await, 404).await, "not_found");
    assert_eq!(assert_error(delete().await, 404).await, "not_found");
    assert!(ids(&body_json(app.get("/api/items").await).await).is_empty());
}

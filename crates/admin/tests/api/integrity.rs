//! A record that fails authentication is never served as bytes.

use ferry_crypto::CHUNK_SIZE;
use ferry_protocol::{DataType, Serialization};
use ferry_store::{ItemMeta, LocalOptions};

use crate::helpers::{Setup, TestApp, assert_error, body_bytes, body_json};

/// Items in their own files (`items/<id>.rec`), so one can be tampered with.
async fn app_with_item_files() -> TestApp {
    TestApp::with(Setup {
        options: LocalOptions {
            inline_max: 0,
            ..LocalOptions::default()
        },
        ..Setup::default()
    })
    .await
}

/// Flips one bit at `offset` of the item's record file.
fn flip_byte(app: &TestApp, meta: &ItemMeta, offset: usize) {
    let path = app
        .dir
        .path()
        .join("items")
        .join(format!("{}.rec", meta.id));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
}

#[tokio::test]
async fn a_tampered_first_chunk_is_a_500_json_error_without_the_bytes() {
    let app = app_with_item_files().await;
    let content = "secret words ".repeat(1000);
    let meta = app
        .put(
            DataType::Text,
            Serialization::Txt,
            "127.0.0.1:1",
            None,
            content.as_bytes(),
        )
        .await;
    flip_byte(&app, &meta, 200);

    let response = app.get(&format!("/api/items/{}/content", meta.id)).await;
    assert_eq!(assert_error(response, 500).await, "integrity_failure");
}

#[tokio::test]
async fn a_tampered_later_chunk_breaks_the_body_and_never_yields_wrong_bytes() {
    let app = app_with_item_files().await;
    let content: Vec<u8> = (0..3 * CHUNK_SIZE).map(|i| (i % 253) as u8).collect();
    let meta = app
        .put(
            DataType::Text,
            Serialization::Txt,
            "127.0.0.1:1",
            None,
            &content,
        )
        .await;
    flip_byte(&app, &meta, 100 + 2 * (CHUNK_SIZE + 16));

    let response = app.get(&format!("/api/items/{}/content", meta.id)).await;
    assert_eq!(
        response.status(),
        200,
        "the failure is only found mid-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let mut received = Vec::new();
    let mut failed = false;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body stream must error");
    assert!(received.len() < content.len());
    assert_eq!(
        received,
        content[..received.len()],
        "only authenticated bytes were sent"
    );
}

#[tokio::test]
async fn ranges_around_a_tampered_chunk_and_other_items_are_still_served() {
    let app = app_with_item_files().await;
    let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let put = || {
        app.put(
            DataType::Text,
            Serialization::Txt,
            "127.0.0.1:1",
            None,
            &content,
        )
    };
    let (tampered, intact) = (put().await, put().await);
    flip_byte(&app, &tampered, 100 + 5 * (CHUNK_SIZE + 16));
    let uri = format!("/api/items/{}/content", tampered.id);

    let clean = app.get_range(&uri, "bytes=0-999").await;
    assert_eq!(clean.status(), 206, "a range before the tampered chunk");
    assert_eq!(body_bytes(clean).await, &content[..1000]);
    let start = 5 * CHUNK_SIZE + 10;
    let dirty = app
        .get_range(&uri, &format!("bytes={start}-{}", start + 20))
        .await;
    assert_eq!(assert_error(dirty, 500).await, "integrity_failure");

    let whole = app.get(&format!("/api/items/{}/content", intact.id)).await;
    assert_eq!(
        body_bytes(whole).await,
        content,
        "another item is unaffected"
    );
    let listed = app.get(&format!("/api/items/{}", tampered.id)).await;
    assert_eq!(
        body_json(listed).await["id"],
        tampered.id.to_string(),
        "the tampered item's metadata is still listed"
    );
}

#[tokio::test]
async fn a_tampered_dictionary_is_not_shown_as_json() {
    let app = app_with_item_files().await;
    let meta = app
        .put(
            DataType::Dictionary,
            Serialization::Json,
            "127.0.0.1:1",
            None,
            br#"{"a": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}"#,
        )
        .await;
    flip_byte(&app, &meta, 70);
    let response = app
        .get(&format!("/api/items/{}/content?as=json", meta.id))
        .await;
    assert_eq!(assert_error(response, 500).await, "integrity_failure");
}

/// The `200` headers and the verified chunks before the tampered one are sent; at
/// the tampered chunk the connection is cut, so the body is shorter than its
/// `Content-Length` and the client knows it is incomplete. No byte of the
/// tampered chunk is ever sent.
#[tokio::test]
async fn over_a_real_connection_a_tampered_later_chunk_cuts_the_body_after_the_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let test = app_with_item_files().await;
    let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let meta = test
        .put(
            DataType::Text,
            Serialization::Txt,
            "127.0.0.1:1",
            None,
            &content,
        )
        .await;
    flip_byte(&test, &meta, 100 + 5 * (CHUNK_SIZE + 16));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ferry_admin::serve(
        listener,
        test.app.clone(),
        crate::helpers::plain_http(),
        std::future::pending(),
    ));
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/items/{}/content HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        meta.id,
        crate::helpers::TOKEN
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = client.read_to_end(&mut response).await;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the headers arrive")
        + 4;
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response[..head_end])
    );
    let body = &response[head_end..];
    // Each verified chunk is flushed before the next is read (all five, unless
    // the socket's buffers were full); never a byte of the tampered sixth.
    assert!(
        (CHUNK_SIZE..=5 * CHUNK_SIZE).contains(&body.len()),
        "{} bytes arrived",
        body.len()
    );
    assert_eq!(body, &content[..body.len()]);
}

//! `POST /file`: streamed raw and multipart uploads, names, encryption and limits.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use ferry_crypto::FernetKey;
use ferry_gateway::{GatewayConfig, app};
use ferry_protocol::{DataType, PIECE_SIZE, Serialization};
use futures::StreamExt as _;

use crate::support::*;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn a_raw_upload_arrives_in_48000_byte_packets_with_its_name() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let file = data(2 * PIECE_SIZE + 123);
    let response = call(
        &gateway(&server),
        post(
            "/file?name=notes.txt",
            "application/octet-stream",
            file.clone(),
        ),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body = json(response).await;
    assert_eq!(
        (body["data_type"].as_str(), body["format"].as_str()),
        (Some("text"), Some("txt"))
    );
    assert_eq!(body["size"], file.len());
    let transfer = &server.transfers()[0];
    assert_eq!(transfer.meta.data_type(), DataType::Text);
    assert_eq!(transfer.meta.serialization(), Serialization::Txt);
    assert_eq!(transfer.name.as_deref(), Some("notes.txt"));
    let sizes: Vec<usize> = transfer.payloads.iter().map(|p| p.len()).collect();
    assert_eq!(sizes, [PIECE_SIZE, PIECE_SIZE, 123]);
    assert_eq!(transfer.plaintext(None), file);
}

#[tokio::test]
async fn an_encrypted_upload_is_a_fernet_token_per_packet() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let key = Arc::new(FernetKey::generate());
    let gateway = app(GatewayConfig {
        fernet: Some(key.clone()),
        ..config(&server)
    });
    let file = data(PIECE_SIZE + 1);
    let response = call(
        &gateway,
        post(
            "/file?encrypt=true",
            "application/octet-stream",
            file.clone(),
        ),
    )
    .await;
    assert_eq!(response.status(), 201);
    let transfer = &server.transfers()[0];
    assert!(transfer.meta.encrypted());
    assert_eq!(transfer.name, None);
    assert_eq!(transfer.payloads.len(), 2);
    assert_eq!(transfer.plaintext(Some(&key)), file);
}

#[tokio::test]
async fn an_empty_upload_is_one_empty_packet() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let response = call(
        &gateway(&server),
        post("/file", "application/octet-stream", Vec::new()),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(server.transfers()[0].payloads, [Bytes::new()]);
}

#[tokio::test]
async fn packets_leave_before_the_upload_has_finished_arriving() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = Body::from_stream(tokio_stream_of(receiver));
    let gateway = gateway(&server);
    let request = tokio::spawn(async move {
        call(&gateway, post("/file", "application/octet-stream", body)).await
    });
    for _ in 0..3 {
        sender
            .send(Ok(Bytes::from(data(PIECE_SIZE))))
            .await
            .unwrap();
    }
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while server.received() < PIECE_SIZE {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "no packet reached the server while the body was still open"
    );
    drop(sender);
    assert_eq!(request.await.unwrap().status(), 201);
    assert_eq!(server.transfers()[0].payloads.len(), 3);
}

fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test]
async fn a_multipart_upload_streams_its_file_field_under_its_filename() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let file = data(PIECE_SIZE + 10);
    let boundary = "XyZb0undary";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhi\r\n")
            .into_bytes();
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        )
        .bytes(),
    );
    body.extend(&file);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let response = call(&gateway(&server), post("/file", &content_type, body)).await;
    assert_eq!(response.status(), 201);
    let transfer = &server.transfers()[0];
    assert_eq!(transfer.name.as_deref(), Some("notes.txt"));
    assert_eq!(transfer.plaintext(None), file);
}

#[tokio::test]
async fn a_form_without_a_file_is_422() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let body = "--b\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhi\r\n--b--\r\n";
    let response = call(
        &gateway(&server),
        post("/file", "multipart/form-data; boundary=b", body),
    )
    .await;
    assert_error(response, 422, "no_file").await;
}

#[tokio::test]
async fn a_file_over_the_limit_is_413_whether_declared_or_streamed() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = app(GatewayConfig {
        max_file_bytes: Some(100_000),
        ..config(&server)
    });
    let declared = post("/file", "application/octet-stream", data(100_001));
    assert_error(call(&gateway, declared).await, 413, "payload_too_large").await;
    let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(data(40_000))));
    let streamed = post(
        "/file",
        "application/octet-stream",
        Body::from_stream(futures::stream::iter(chunks)),
    );
    assert_error(call(&gateway, streamed).await, 413, "payload_too_large").await;
    assert!(server.transfers().is_empty());
}

#[tokio::test]
async fn a_client_that_stops_sending_is_408_but_a_slow_steady_one_is_not() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = app(GatewayConfig {
        request_timeout: Duration::from_millis(300),
        ..config(&server)
    });
    let slow = futures::stream::unfold(0, |sent| async move {
        (sent < 6).then_some(())?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(data(1000))), sent + 1))
    });
    let response = call(
        &gateway,
        post("/file", "application/octet-stream", Body::from_stream(slow)),
    )
    .await;
    assert_eq!(
        response.status(),
        201,
        "600 ms in total, never idle for 300 ms"
    );
    let stalled = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))])
        .chain(futures::stream::pending());
    let response = call(
        &gateway,
        post(
            "/file",
            "application/octet-stream",
            Body::from_stream(stalled),
        ),
    )
    .await;
    assert_error(response, 408, "request_timeout").await;
}

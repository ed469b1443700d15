//! Live updates as Server-Sent Events, and a graceful shutdown that ends them.

use std::time::Duration;

use axum::body::Body;
use ferry_admin::{AdminState, app, serve};
use ferry_http::BearerToken;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TOKEN, TestApp, header};

#[tokio::test]
async fn newly_committed_items_arrive_as_events() {
    let app = TestApp::new().await;
    let response = app.get("/api/events").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let mut body = response.into_body().into_data_stream();

    let meta = app.put_text("live!").await;
    let mut received = String::new();
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(received.contains("event: item\n"), "{received}");
    assert!(
        received.contains(&format!("id: {}\n", meta.id)),
        "{received}"
    );
    let data = received
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let item: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(item["id"], meta.id.to_string());
    assert_eq!(item["size"], 5);
}

#[tokio::test]
async fn graceful_shutdown_ends_open_event_streams() {
    let test = TestApp::new().await;
    let state = AdminState {
        store: test.store.clone(),
        token: BearerToken::parse(TOKEN).unwrap(),
        metrics: None,
        metrics_public: false,
        rate_limit: Default::default(),
        retention: Default::default(),
        notary: None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        app(state),
        crate::helpers::plain_http(),
        async move { stopped.await.unwrap_or(()) },
    ));

    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = client.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(10), server).await;
    finished
        .expect("serve returns despite the open stream")
        .unwrap()
        .unwrap();
    drop(Body::empty());
}

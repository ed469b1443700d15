//! Persistent sessions: reuse, bounds, and recovery when the server drops them.

use ferry_gateway::{GatewayConfig, app};

use crate::support::*;

#[tokio::test]
async fn many_requests_share_one_connection() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = gateway(&server);
    for i in 0..5 {
        let response = call(
            &gateway,
            post("/dict", "application/json", format!(r#"{{"n": {i}}}"#)),
        )
        .await;
        assert_eq!(response.status(), 201);
        let response = call(&gateway, post("/file", "application/octet-stream", "hello")).await;
        assert_eq!(response.status(), 201);
    }
    assert_eq!(server.transfers().len(), 10);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_refused_transfer_keeps_its_connection() {
    let server = FakeServer::start(Answer::Refuse("no".into()), false).await;
    let gateway = gateway(&server);
    for _ in 0..3 {
        let response = call(&gateway, post("/dict", "application/json", "{}")).await;
        assert_eq!(response.status(), 422);
    }
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn concurrent_requests_never_open_more_connections_than_the_pool_size() {
    let server = FakeServer::start(Answer::Extended, false).await;
    let gateway = app(GatewayConfig {
        pool_size: 2,
        ..config(&server)
    });
    let requests = (0..8).map(|_| {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            call(&gateway, post("/dict", "application/json", "{}"))
                .await
                .status()
        })
    });
    for request in requests {
        assert_eq!(request.await.unwrap(), 201);
    }
    assert!(
        server.connections() <= 2,
        "{} connections",
        server.connections()
    );
}

#[tokio::test]
async fn a_connection_the_server_dropped_is_replaced_and_the_dictionary_resent() {
    let server = FakeServer::start(Answer::Extended, true).await;
    let gateway = gateway(&server);
    for _ in 0..3 {
        let response = call(&gateway, post("/dict", "application/json", r#"{"a": 1}"#)).await;
        assert_eq!(response.status(), 201);
    }
    assert_eq!(server.transfers().len(), 3);
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn a_connection_the_server_dropped_is_replaced_and_the_file_resent() {
    let server = FakeServer::start(Answer::Extended, true).await;
    let gateway = gateway(&server);
    for _ in 0..3 {
        let response = call(
            &gateway,
            post(
                "/file?name=a.txt",
                "application/octet-stream",
                vec![7u8; 100_000],
            ),
        )
        .await;
        assert_eq!(response.status(), 201);
    }
    let transfers = server.transfers();
    assert_eq!(transfers.len(), 3);
    assert!(
        transfers
            .iter()
            .all(|t| t.plaintext(None) == vec![7u8; 100_000] && t.name.as_deref() == Some("a.txt"))
    );
}

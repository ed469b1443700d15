//! Limits on connections: silent peers are dropped after the idle timeout,
//! connections past the cap wait in the backlog until one ends, and a shutdown
//! lets transfers in flight finish within the grace period, then aborts the rest
//! (which stores nothing of them).

use std::time::{Duration, Instant};

use crate::harness::{Heard, PATIENCE, TestServer, transfer};
use ferry_protocol::{Meta, Serialization};
use ferry_server::ServerConfig;

const IDLE: Duration = Duration::from_millis(500);

fn json(body: &str) -> Vec<u8> {
    let meta = Meta::dictionary(Serialization::Json, false).unwrap();
    transfer(meta, body.as_bytes())
}

#[tokio::test]
async fn silent_and_stalled_peers_are_dropped_after_the_idle_timeout() {
    let server = TestServer::start(ServerConfig {
        idle_timeout: IDLE,
        ..ServerConfig::default()
    })
    .await;
    let stalls: [&[u8]; 4] = [
        b"",                                   // says nothing at all
        &[0x0c, 0x00, 0x00],                   // half a packet header
        &[0x08, 0x00, 0x00, 0x01, b'a'],       // an open transfer
        &[0x0c, 0x00, 0x00, 0x10, b'p', b'a'], // half a payload
    ];
    for stall in stalls {
        let mut client = server.connect().await;
        let started = Instant::now();
        client.send(stall).await.unwrap();
        client.assert_closed(PATIENCE).await;
        assert!(
            started.elapsed() >= IDLE,
            "a peer stalled after {stall:02x?} was dropped after {:?}, before the idle timeout",
            started.elapsed()
        );
    }
    assert!(server.items().await.is_empty(), "nothing partial is stored");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    let server = TestServer::start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    })
    .await;
    let mut first = server.connect().await;
    assert_eq!(first.exchange(&json(r#"{"who": "first"}"#)).await, "OK");
    let mut second = server.connect().await;
    second.send(&json(r#"{"who": "second"}"#)).await.unwrap();
    // Negative by nature: a served connection would be answered well within this.
    assert_eq!(
        second.hear(Duration::from_millis(300)).await,
        Heard::Silence,
        "the second connection waits while the first is held"
    );
    assert_eq!(
        first
            .exchange(&json(r#"{"who": "first", "again": 1}"#))
            .await,
        "OK",
        "the connection inside keeps being served"
    );
    first.end().await;
    assert_eq!(
        second.reply().await,
        "OK",
        "the waiting connection is served once the first ends"
    );
    second.end().await;
    assert_eq!(server.items().await.len(), 3);
}

#[tokio::test]
async fn a_shutdown_lets_a_transfer_in_flight_finish_and_closes_idle_connections() {
    let mut server = TestServer::start(ServerConfig {
        shutdown_grace: PATIENCE,
        ..ServerConfig::default()
    })
    .await;
    let mut idle = server.connect().await;
    assert_eq!(idle.exchange(&json("{}")).await, "OK");
    let mut busy = server.connect().await;
    let whole = transfer(Meta::text(false), &vec![b'w'; 600_000]);
    busy.send(&whole[..400_000]).await.unwrap();
    server.wait_for_unfinished_item().await;

    server.shut_down();
    idle.assert_closed(PATIENCE).await;
    busy.send(&whole[400_000..]).await.unwrap();
    assert_eq!(busy.reply().await, "OK", "the transfer in flight finishes");
    busy.assert_closed(PATIENCE).await;
    server.stopped().await;
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
    let items = server.items().await;
    assert_eq!(items.len(), 2);
    assert_eq!(server.content(&items[1]).await.len(), 600_000);
}

#[tokio::test]
async fn a_transfer_that_outlasts_the_grace_period_is_aborted_and_not_stored() {
    let grace = Duration::from_millis(300);
    let mut server = TestServer::start(ServerConfig {
        shutdown_grace: grace,
        ..ServerConfig::default()
    })
    .await;
    let mut client = server.connect().await;
    let whole = transfer(Meta::text(false), &vec![b's'; 600_000]);
    client.send(&whole[..400_000]).await.unwrap();
    server.wait_for_unfinished_item().await;

    let started = Instant::now();
    server.shut_down();
    server.stopped().await;
    assert!(
        started.elapsed() >= grace,
        "stopped before the grace period"
    );
    client.assert_closed(PATIENCE).await;
    assert!(server.items().await.is_empty(), "nothing of it is stored");
}

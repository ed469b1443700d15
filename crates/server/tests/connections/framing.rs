//! Broken framing: the server answers `ERROR: protocol error: …` and closes the
//! connection, stores nothing of the broken transfer, and keeps serving others.
//! Unassigned operation bytes are not broken framing: they are ignored silently.

use std::time::Duration;

use crate::harness::{Heard, PATIENCE, TestServer, transfer, transfer_of};
use ferry_protocol::{END, Meta, Serialization};
use ferry_server::ServerConfig;

/// An INITIAL text packet without FINAL: a transfer left open.
const OPENED: [u8; 7] = [0x08, 0x00, 0x00, 0x03, b'a', b'b', b'c'];

/// Sends `bytes` on a fresh connection: expects a protocol error and the close,
/// then checks that another connection is served and nothing broken was stored.
async fn broken_framing_closes_the_connection(bytes: &[u8]) {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.connect().await;
    client.send(bytes).await.unwrap();
    let reply = client.reply().await;
    assert!(
        reply.starts_with("ERROR: protocol error: "),
        "after {bytes:02x?}: {reply:?}"
    );
    client.assert_closed(PATIENCE).await;

    let mut other = server.connect().await;
    let good = transfer(Meta::text(false), b"still serving");
    assert_eq!(other.exchange(&good).await, "OK");
    other.end().await;
    let items = server.items().await;
    assert_eq!(items.len(), 1, "only the good transfer is stored");
    assert_eq!(server.content(&items[0]).await, b"still serving");
}

#[tokio::test]
async fn initial_twice_is_a_protocol_error() {
    broken_framing_closes_the_connection(&[&OPENED[..], &OPENED].concat()).await;
}

#[tokio::test]
async fn a_packet_with_no_transfer_open_is_a_protocol_error() {
    broken_framing_closes_the_connection(&[0x04, 0x00, 0x01, b'x']).await;
}

#[tokio::test]
async fn an_unknown_meta_byte_is_a_protocol_error() {
    // Data type 7 is unassigned.
    broken_framing_closes_the_connection(&[0x0C, 0xE0, 0x00, 0x00]).await;
}

#[tokio::test]
async fn a_transfer_operation_with_its_low_bits_set_is_a_protocol_error() {
    broken_framing_closes_the_connection(&[0x0F, 0x00, 0x00, 0x00]).await;
}

#[tokio::test]
async fn end_inside_a_transfer_is_a_protocol_error() {
    broken_framing_closes_the_connection(&[&OPENED[..], &[END]].concat()).await;
}

#[tokio::test]
async fn unassigned_operation_bytes_are_ignored_with_no_reply() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.connect().await;
    client.send(&[0x40, 0x50, 0xF0, 0xFF]).await.unwrap();
    // Negative by nature: a reply would arrive well within this time.
    assert_eq!(
        client.hear(Duration::from_millis(300)).await,
        Heard::Silence
    );
    // Between the packets of a transfer too, as the legacy server read them.
    let packets = transfer_of(Meta::text(false), [&b"abc"[..], b"def"].into_iter());
    let first_packet = 1 + 1 + 2 + 3;
    let mut bytes = packets[..first_packet].to_vec();
    bytes.extend([0x4C, 0x99]);
    bytes.extend(&packets[first_packet..]);
    assert_eq!(client.exchange(&bytes).await, "OK");
    let meta = Meta::dictionary(Serialization::Json, false).unwrap();
    assert_eq!(client.exchange(&transfer(meta, b"{}")).await, "OK");
    client.end().await;
    let items = server.items().await;
    assert_eq!(items.len(), 2);
    assert_eq!(server.content(&items[0]).await, b"abcdef");
}

#[tokio::test]
async fn end_closes_the_session_without_a_reply() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.connect().await;
    client.send(&[END]).await.unwrap();
    client.assert_closed(PATIENCE).await;
}

#[tokio::test]
async fn a_peer_that_hangs_up_mid_transfer_leaves_nothing_stored() {
    let server = TestServer::start(ServerConfig::default()).await;
    for cut in [1, 2, 3, 5, 100, 48_000] {
        let whole = transfer(Meta::text(false), &vec![b'q'; 100_000]);
        let mut client = server.connect().await;
        client.send(&whole[..cut]).await.unwrap();
        drop(client);
    }
    let mut client = server.connect().await;
    assert_eq!(
        client
            .exchange(&transfer(Meta::text(false), b"after"))
            .await,
        "OK"
    );
    client.end().await;
    let items = server.items().await;
    assert_eq!(items.len(), 1, "nothing partial is listed");
    assert_eq!(server.content(&items[0]).await, b"after");
}

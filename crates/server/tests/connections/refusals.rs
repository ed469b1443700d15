//! Refusals that keep the framing: the rest of the transfer is drained, it is
//! answered with one `ERROR: <reason>` after its FINAL packet, nothing of it is
//! stored, and the same connection takes the next transfer.

use std::time::Duration;

use crate::harness::{Client, Heard, TestServer, transfer, transfer_of};
use ferry_codec::Limits;
use ferry_crypto::FernetKey;
use ferry_protocol::{Meta, Serialization};
use ferry_server::{EncryptionPolicy, ServerConfig};

fn dict_meta(serialization: Serialization, encrypted: bool) -> Meta {
    Meta::dictionary(serialization, encrypted).expect("a dictionary format")
}

/// A good transfer that every configuration below accepts.
fn good() -> Vec<u8> {
    transfer(dict_meta(Serialization::Json, false), br#"{"good": true}"#)
}

/// Sends `bad`, expects one `ERROR: …` naming `reason`, then a good transfer on
/// the same connection answered `OK`.
async fn refused_then_usable(client: &mut Client, bad: &[u8], reason: &str) {
    let reply = client.exchange(bad).await;
    assert!(
        reply.starts_with("ERROR: ") && reply.to_lowercase().contains(reason),
        "expected a refusal naming {reason:?}, heard {reply:?}"
    );
    assert_eq!(client.exchange(&good()).await, "OK", "after {reply:?}");
}

#[tokio::test]
async fn tokens_of_another_key_and_tampered_tokens_are_refused_once() {
    let server = TestServer::start(ServerConfig::default()).await;
    let key = server.fernet.clone().unwrap();
    let wrong = FernetKey::generate().encrypt(b"wrong key");
    let right = key.encrypt(b"a piece of text");
    let mut flipped = right.clone();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let mut client = server.connect().await;
    for payloads in [
        [&wrong[..], &right, &right],
        [&right, &flipped, &right],
        [&right, &right, &right[..right.len() - 4]],
        [&right, b"not a token", &right],
    ] {
        let bad = transfer_of(Meta::text(true), payloads.into_iter());
        refused_then_usable(&mut client, &bad, "fernet").await;
    }
    client.end().await;
    assert_eq!(server.items().await.len(), 4, "only the good transfers");
}

#[tokio::test]
async fn a_refusal_is_answered_only_after_the_final_packet() {
    let server = TestServer::start(ServerConfig::default()).await;
    let token = FernetKey::generate().encrypt(b"wrong key");
    let bad = transfer_of(Meta::text(true), [&token[..], &token, &token].into_iter());
    let last_packet = 1 + 2 + token.len();
    let mut client = server.connect().await;
    client.send(&bad[..bad.len() - last_packet]).await.unwrap();
    // Negative by nature: a reply sent early would arrive well within this time.
    assert_eq!(
        client.hear(Duration::from_millis(300)).await,
        Heard::Silence,
        "the refusal waits for the FINAL packet"
    );
    client.send(&bad[bad.len() - last_packet..]).await.unwrap();
    assert!(client.reply().await.starts_with("ERROR: "));
    assert_eq!(client.exchange(&good()).await, "OK");
    client.end().await;
}

#[tokio::test]
async fn encryption_is_refused_when_disabled_and_plaintext_when_it_is_required() {
    let disabled = TestServer::start(ServerConfig {
        encryption: EncryptionPolicy::Disabled,
        ..ServerConfig::default()
    })
    .await;
    let mut client = disabled.connect().await;
    let encrypted = disabled.encrypted(dict_meta(Serialization::Json, true), b"{}");
    refused_then_usable(&mut client, &encrypted, "encryption is disabled").await;
    client.end().await;

    let required = TestServer::start(ServerConfig {
        encryption: EncryptionPolicy::Required,
        ..ServerConfig::default()
    })
    .await;
    let mut client = required.connect().await;
    let reply = client.exchange(&good()).await;
    assert!(
        reply.starts_with("ERROR: ") && reply.contains("encrypted transfers only"),
        "{reply}"
    );
    let encrypted = required.encrypted(dict_meta(Serialization::Json, true), b"{}");
    assert_eq!(client.exchange(&encrypted).await, "OK");
    client.end().await;
    assert_eq!(required.items().await.len(), 1);
}

#[tokio::test]
async fn a_server_without_a_fernet_key_refuses_encrypted_transfers() {
    let server = TestServer::start_with_key(ServerConfig::default(), None).await;
    let token = FernetKey::generate().encrypt(b"text");
    let mut client = server.connect().await;
    let bad = transfer_of(Meta::text(true), [&token[..]].into_iter());
    refused_then_usable(&mut client, &bad, "encryption is disabled").await;
    client.end().await;
}

#[tokio::test]
async fn pickles_are_refused_when_pickle_is_disabled() {
    let server = TestServer::start(ServerConfig {
        allow_pickle: false,
        ..ServerConfig::default()
    })
    .await;
    // A valid pickle of {"a": 1} (protocol 2).
    let pickle = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
    let mut client = server.connect().await;
    let bad = transfer(dict_meta(Serialization::Binary, false), pickle);
    refused_then_usable(&mut client, &bad, "pickle").await;
    client.end().await;
    assert_eq!(server.items().await.len(), 1);
}

#[tokio::test]
async fn undecodable_dictionaries_are_refused_once_and_not_stored() {
    let server = TestServer::start(ServerConfig::default()).await;
    let cases: [(Serialization, &[u8], &str); 6] = [
        (Serialization::Json, b"{not json", "json refused"),
        (Serialization::Json, b"[1, 2, 3]", "not a dictionary"),
        (Serialization::Json, b"", "json refused"),
        (Serialization::Xml, b"<root><a>unclosed", "xml refused"),
        (Serialization::Binary, b"\x80\x04garbage", "pickle refused"),
        (Serialization::Binary, b"\x80\x02K\x01.", "not a dictionary"),
    ];
    let mut client = server.connect().await;
    for (serialization, body, reason) in cases {
        // In several packets, so that draining is exercised.
        let pieces = body.chunks(body.len().div_ceil(3).max(1));
        let bad = transfer_of(
            dict_meta(serialization, false),
            pieces.chain(Some(&b""[..])),
        );
        refused_then_usable(&mut client, &bad, reason).await;
    }
    client.end().await;
    assert_eq!(
        server.items().await.len(),
        cases.len(),
        "only the good ones"
    );
}

#[tokio::test]
async fn dictionaries_over_the_limits_are_refused_with_the_limit() {
    let server = TestServer::start(ServerConfig {
        dict_limits: Limits {
            max_bytes: 1000,
            max_depth: 4,
        },
        ..ServerConfig::default()
    })
    .await;
    let big = format!(r#"{{"blob": "{}"}}"#, "z".repeat(3000));
    let pieces = big.as_bytes().chunks(700);
    let mut client = server.connect().await;
    let bad = transfer_of(dict_meta(Serialization::Json, false), pieces);
    refused_then_usable(&mut client, &bad, "1000").await;
    let deep = br#"{"a": {"b": {"c": {"d": {"e": {}}}}}}"#;
    let bad = transfer(dict_meta(Serialization::Json, false), deep);
    refused_then_usable(&mut client, &bad, "deeper than 4").await;
    client.end().await;
    assert_eq!(server.items().await.len(), 2);
}

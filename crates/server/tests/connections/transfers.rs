//! Transfers the server takes: each is answered exactly `OK` (or, after the
//! extended-reply hello, a JSON line naming the item) and stored as it arrived.

use crate::harness::{TestServer, transfer, transfer_of};
use ferry_protocol::{DataType, EXT_HELLO, ExtendedReply, Meta, Serialization, encode};
use ferry_server::ServerConfig;
use sha2::{Digest, Sha256};

fn json_meta() -> Meta {
    Meta::dictionary(Serialization::Json, false).expect("json is a dictionary format")
}

#[tokio::test]
async fn a_json_dictionary_is_answered_ok_and_stored_as_it_arrived() {
    let server = TestServer::start(ServerConfig::default()).await;
    let body = br#"{"sensor": "s-1", "value": 21.5, "tags": ["a", "b"]}"#;
    let mut client = server.connect().await;
    assert_eq!(client.exchange(&transfer(json_meta(), body)).await, "OK");
    client.end().await;

    let items = server.items().await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.data_type, DataType::Dictionary);
    assert_eq!(item.serialization, Serialization::Json);
    assert!(!item.encrypted_in_transit);
    assert_eq!(item.size, body.len() as u64);
    assert_eq!(item.sha256, hex::encode(Sha256::digest(body)));
    assert_eq!(server.content(item).await, body);
}

#[tokio::test]
async fn texts_of_every_edge_size_are_stored_byte_for_byte() {
    let server = TestServer::start(ServerConfig::default()).await;
    let sizes = [0, 1, 47_999, 48_000, 48_001, 3 * 48_000 + 5];
    let mut client = server.connect().await;
    let mut sent = Vec::new();
    for size in sizes {
        let text: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(
            client.exchange(&transfer(Meta::text(false), &text)).await,
            "OK",
            "text of {size} bytes"
        );
        sent.push(text);
    }
    client.end().await;

    let items = server.items().await;
    assert_eq!(items.len(), sizes.len());
    for (item, text) in items.iter().zip(&sent) {
        assert_eq!(item.data_type, DataType::Text);
        assert_eq!(server.content(item).await, *text, "{} bytes", text.len());
    }
}

#[tokio::test]
async fn packets_of_any_length_up_to_the_largest_are_taken() {
    let server = TestServer::start(ServerConfig::default()).await;
    let largest = vec![b'x'; usize::from(u16::MAX)];
    let payloads: [&[u8]; 4] = [b"", &largest, b"y", &largest];
    let mut client = server.connect().await;
    assert_eq!(
        client
            .exchange(&transfer_of(Meta::text(false), payloads.into_iter()))
            .await,
        "OK"
    );
    client.end().await;
    let items = server.items().await;
    assert_eq!(server.content(&items[0]).await, payloads.concat());
}

#[tokio::test]
async fn encrypted_transfers_are_decrypted_packet_by_packet_and_stored_in_plaintext() {
    let server = TestServer::start(ServerConfig::default()).await;
    let text: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let dict = br#"{"secret": true}"#;
    let mut client = server.connect().await;
    assert_eq!(
        client
            .exchange(&server.encrypted(Meta::text(true), &text))
            .await,
        "OK"
    );
    let meta = Meta::dictionary(Serialization::Json, true).unwrap();
    assert_eq!(client.exchange(&server.encrypted(meta, dict)).await, "OK");
    client.end().await;

    let items = server.items().await;
    assert!(items.iter().all(|item| item.encrypted_in_transit));
    assert_eq!(server.content(&items[0]).await, text);
    assert_eq!(server.content(&items[1]).await, dict);
}

#[tokio::test]
async fn many_transfers_on_one_connection_are_each_answered_once_in_order() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = server.connect().await;
    for n in 0..20 {
        let body = format!(r#"{{"n": {n}}}"#);
        assert_eq!(
            client
                .exchange(&transfer(json_meta(), body.as_bytes()))
                .await,
            "OK"
        );
    }
    client.end().await;
    let items = server.items().await;
    for (n, item) in items.iter().enumerate() {
        assert_eq!(
            server.content(item).await,
            format!(r#"{{"n": {n}}}"#).as_bytes()
        );
    }
}

#[tokio::test]
async fn after_the_hello_each_reply_names_the_stored_item() {
    let server = TestServer::start(ServerConfig::default()).await;
    let body = b"named text\n";
    let mut bytes = vec![EXT_HELLO];
    bytes.extend(encode::name_nibbles("notes.txt"));
    bytes.extend(transfer(Meta::text(false), body));
    let mut client = server.connect().await;
    let line = client.exchange(&bytes).await;
    let reply: ExtendedReply = serde_json::from_str(
        line.strip_suffix('\n')
            .unwrap_or_else(|| panic!("not one line: {line:?}")),
    )
    .unwrap_or_else(|err| panic!("not an extended reply ({err}): {line:?}"));
    // A refusal is a JSON line too, and the connection stays extended.
    let refused = client.exchange(&transfer(json_meta(), b"not json")).await;
    client.end().await;

    let items = server.items().await;
    let item = &items[0];
    assert_eq!(
        reply,
        ExtendedReply {
            ok: true,
            id: Some(item.id.to_string()),
            size: Some(body.len() as u64),
            sha256: Some(hex::encode(Sha256::digest(body))),
            ..ExtendedReply::default()
        }
    );
    assert_eq!(item.name.as_deref(), Some("notes.txt"));
    assert!(refused.starts_with(r#"{"ok":false,"error":"#), "{refused}");
    assert!(refused.ends_with("}\n"), "{refused}");
    assert_eq!(items.len(), 1);
}

#[tokio::test]
async fn a_name_applies_to_the_next_transfer_only() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut bytes = encode::name_nibbles("first.txt");
    bytes.extend(transfer(Meta::text(false), b"one"));
    let mut client = server.connect().await;
    assert_eq!(client.exchange(&bytes).await, "OK");
    assert_eq!(
        client.exchange(&transfer(Meta::text(false), b"two")).await,
        "OK"
    );
    client.end().await;
    let names: Vec<_> = server
        .items()
        .await
        .into_iter()
        .map(|item| item.name)
        .collect();
    assert_eq!(names, [Some("first.txt".to_owned()), None]);
}

#[tokio::test]
async fn connections_are_served_side_by_side() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    // The first connection's transfer stays open while the second one completes.
    let opened = transfer(Meta::text(false), b"first half");
    first.send(&opened[..opened.len() - 2]).await.unwrap();
    assert_eq!(
        second
            .exchange(&transfer(json_meta(), br#"{"b": 2}"#))
            .await,
        "OK"
    );
    first.send(&opened[opened.len() - 2..]).await.unwrap();
    assert_eq!(first.reply().await, "OK");
    first.end().await;
    second.end().await;
    assert_eq!(server.items().await.len(), 2);
}

/// Pieces of very different sizes take very different times to decrypt: the
/// store gets their plaintexts in the order they were sent. (The server decrypts
/// them one after another; decrypting them on several threads, which measured
/// slower on two cores, would have to keep this.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_pieces_of_very_different_sizes_are_stored_in_the_order_sent() {
    let key = ferry_crypto::FernetKey::generate();
    let server = TestServer::start_with_key(ServerConfig::default(), Some(key.clone())).await;
    let sizes = [
        48_000, 9_000, 100, 30_000, 8_192, 1, 47_999, 12_000, 20_000, 7,
    ];
    let mut plaintext = Vec::new();
    let mut tokens = Vec::new();
    for round in 0..6usize {
        for (i, size) in sizes.iter().enumerate() {
            let piece: Vec<u8> = (0..*size)
                .map(|at| (round * 31 + i * 7 + at / 1000) as u8)
                .collect();
            tokens.push(key.encrypt(&piece));
            plaintext.extend_from_slice(&piece);
        }
    }
    let wire = transfer_of(Meta::text(true), tokens.iter().map(Vec::as_slice));
    let mut client = server.connect().await;
    assert_eq!(client.exchange(&wire).await, "OK");
    client.end().await;
    let items = server.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].size, plaintext.len() as u64);
    assert!(
        server.content(&items[0]).await == plaintext,
        "the stored bytes are not the pieces in the order sent"
    );
}

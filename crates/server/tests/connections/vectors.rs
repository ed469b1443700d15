//! The protocol's test vectors (`tests/vectors` at the repository's root) through
//! the server: the recorded legacy session gets the recorded replies byte for byte
//! and stores its six items, and CPython's pickles are taken or refused as the
//! codec decides, with nothing hostile stored.

use std::path::PathBuf;

use crate::harness::{PATIENCE, TestServer, transfer};
use ferry_crypto::FernetKey;
use ferry_protocol::{DataType, Meta, Serialization};
use ferry_server::ServerConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn vectors() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors"))
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn json(path: PathBuf) -> Value {
    serde_json::from_slice(&read(path)).expect("the vector's JSON parses")
}

#[tokio::test]
async fn the_recorded_legacy_session_gets_the_recorded_replies_and_stores_its_six_items() {
    let session = vectors().join("legacy-session");
    let key = FernetKey::load(&session.join("example.key")).expect("the example key");
    let server = TestServer::start_with_key(ServerConfig::default(), Some(key)).await;

    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(&read(session.join("client-to-server.bin")))
        .await
        .unwrap();
    let mut replies = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut replies))
        .await
        .expect("the server closes the session after END")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&replies),
        String::from_utf8_lossy(&read(session.join("server-to-client.bin")))
    );

    let expected = json(session.join("expected.json"))["transfers"].clone();
    let expected = expected.as_array().expect("a list of transfers");
    let items = server.items().await;
    assert_eq!(items.len(), expected.len());
    for (item, transfer) in items.iter().zip(expected) {
        let summary = (
            item.data_type.as_str(),
            item.serialization.as_str(),
            item.encrypted_in_transit,
        );
        assert_eq!(
            summary,
            (
                transfer["data_type"].as_str().unwrap(),
                transfer["format"].as_str().unwrap(),
                transfer["encrypted"].as_bool().unwrap(),
            )
        );
        let content = server.content(item).await;
        let content = match item.data_type {
            DataType::Text => Value::String(String::from_utf8(content).expect("UTF-8 text")),
            DataType::Dictionary => Value::Object(
                ferry_codec::decode(item.serialization, &content, &Default::default())
                    .expect("a stored dictionary decodes"),
            ),
        };
        assert!(
            content == transfer["content"],
            "{summary:?}: stored content differs"
        );
    }
}

#[tokio::test]
async fn cpythons_pickles_are_stored_and_hostile_ones_refused() {
    let dir = vectors().join("pickle");
    let expected = json(dir.join("expected.json"));
    let expected = expected.as_object().expect("name -> content");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".pkl"))
        .collect();
    files.sort();
    let server = TestServer::start(ServerConfig::default()).await;
    let meta = Meta::dictionary(Serialization::Binary, false).unwrap();
    let mut client = server.connect().await;
    let mut stored = Vec::new();
    for file in &files {
        let pickle = read(dir.join(file));
        let reply = client.exchange(&transfer(meta, &pickle)).await;
        let case = file.split('.').next().unwrap();
        if expected.contains_key(case) {
            assert_eq!(reply, "OK", "{file}");
            stored.push((file, pickle));
        } else if case.starts_with("hostile_") {
            assert!(
                reply.starts_with("ERROR: "),
                "{file} was not refused: {reply}"
            );
        }
    }
    client.end().await;
    assert!(
        stored.len() >= 30,
        "only {} vectors have an expected decoding",
        stored.len()
    );

    // The hostile pickles are not listed; the special ones (mapped or refused) may be.
    let items = server.items().await;
    let mut contents = Vec::new();
    for item in &items {
        contents.push(server.content(item).await);
    }
    for (file, pickle) in &stored {
        assert!(
            contents.contains(pickle),
            "{file} is not stored as it arrived"
        );
    }
    for file in files.iter().filter(|file| file.starts_with("hostile_")) {
        assert!(
            !contents.contains(&read(dir.join(file))),
            "{file} was stored"
        );
    }
}

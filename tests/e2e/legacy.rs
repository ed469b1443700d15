//! The legacy system, byte for byte: the recorded session replayed into the real
//! server, Ferry's client compared with the recording, and Ferry's client against
//! a stand-in of the legacy server.

use crate::harness::{Server, vectors};
use bytes::BytesMut;
use ferry_client::{Options, Session};
use ferry_crypto::FernetKey;
use ferry_protocol::{Decoder, Frame, Meta, Packet, Serialization};
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn session_dir() -> std::path::PathBuf {
    vectors().join("legacy-session")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(session_dir().join("expected.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["transfers"]
        .as_array()
        .unwrap()
        .clone()
}

fn example_key() -> FernetKey {
    FernetKey::load(&session_dir().join("example.key")).unwrap()
}

/// Splits a recording into packets (extension bytes are skipped).
fn packets(bytes: &[u8]) -> Vec<Packet> {
    let mut buf = BytesMut::from(bytes);
    let mut packets = Vec::new();
    while let Some(frame) = Decoder.decode(&mut buf).unwrap() {
        if let Frame::Packet(packet) = frame {
            packets.push(packet);
        }
    }
    assert!(buf.is_empty());
    packets
}

/// Groups packets into transfers.
fn transfers(packets: Vec<Packet>) -> Vec<Vec<Packet>> {
    let mut out: Vec<Vec<Packet>> = Vec::new();
    for packet in packets {
        if packet.initial {
            out.push(Vec::new());
        }
        out.last_mut().unwrap().push(packet);
    }
    out
}

fn data_type(item: &Value) -> &str {
    item["data_type"].as_str().unwrap()
}

#[tokio::test]
async fn the_recorded_legacy_session_replayed_gets_the_recorded_replies_and_stores_the_six_items() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("example.key");
    std::fs::copy(session_dir().join("example.key"), &key).unwrap();
    let server = Server::start(&["--fernet-key", key.to_str().unwrap()]);

    let recording = std::fs::read(session_dir().join("client-to-server.bin")).unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.tcp()).await.unwrap();
    stream.write_all(&recording).await.unwrap();
    let mut replies = Vec::new();
    stream.read_to_end(&mut replies).await.unwrap();
    assert_eq!(
        replies,
        std::fs::read(session_dir().join("server-to-client.bin")).unwrap()
    );

    let admin = server.admin();
    let items = admin.all_items().await;
    assert_eq!(items.len(), 6);
    let mut unmatched: Vec<Value> = items;
    for transfer in expected() {
        let mut found = None;
        for (index, item) in unmatched.iter().enumerate() {
            if data_type(item) != transfer["data_type"]
                || item["serialization"] != transfer["format"]
                || item["encrypted_in_transit"] != transfer["encrypted"]
            {
                continue;
            }
            let id = item["id"].as_str().unwrap();
            let content = match data_type(item) {
                "text" => Value::String(String::from_utf8(admin.content(id).await).unwrap()),
                _ => admin.content_as_json(id).await,
            };
            if content == transfer["content"] {
                found = Some(index);
                break;
            }
        }
        let index = found.unwrap_or_else(|| {
            panic!(
                "no stored item matches {}",
                &transfer.to_string()[..100.min(transfer.to_string().len())]
            )
        });
        unmatched.remove(index);
    }
}

/// A server that records every byte and answers `OK` to each transfer.
async fn recording_server() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut all = Vec::new();
        let mut buf = BytesMut::new();
        loop {
            let read = stream.read_buf(&mut buf).await.unwrap();
            if read == 0 {
                return all;
            }
            all.extend_from_slice(&buf[buf.len() - read..]);
            while let Some(frame) = Decoder.decode(&mut buf).unwrap() {
                if matches!(frame, Frame::Packet(Packet { final_: true, .. })) {
                    stream.write_all(b"OK").await.unwrap();
                }
            }
        }
    });
    (addr, task)
}

/// Sends the six recorded items with Ferry's client.
async fn send_the_six_items(addr: &str, extensions: bool) -> Vec<Option<String>> {
    let options = Options {
        fernet: Some(Arc::new(example_key())),
        extensions,
        ..Options::default()
    };
    let mut session = Session::connect(addr, options).await.unwrap();
    let mut ids = Vec::new();
    for transfer in expected() {
        let encrypt = transfer["encrypted"].as_bool().unwrap();
        let receipt = match (data_type(&transfer), transfer["format"].as_str().unwrap()) {
            ("text", _) => {
                session
                    .send_bytes(
                        Meta::text(encrypt),
                        transfer["content"].as_str().unwrap().as_bytes(),
                        None,
                    )
                    .await
            }
            (_, format) => {
                let serialization = match format {
                    "json" => Serialization::Json,
                    "xml" => Serialization::Xml,
                    _ => Serialization::Binary,
                };
                session
                    .send_dict(
                        transfer["content"].as_object().unwrap(),
                        serialization,
                        encrypt,
                    )
                    .await
            }
        };
        ids.push(receipt.unwrap().id);
    }
    session.end().await.unwrap();
    ids
}

#[tokio::test]
async fn ferrys_client_writes_the_recorded_packet_structure() {
    for extensions in [false, true] {
        let (addr, recorder) = recording_server().await;
        send_the_six_items(&addr, extensions).await;
        let ours = recorder.await.unwrap();
        let recorded = std::fs::read(session_dir().join("client-to-server.bin")).unwrap();
        if !extensions {
            assert_eq!(ours.last(), Some(&0x10), "the session ends with END");
        }
        let key = example_key();
        let (ours, recorded) = (transfers(packets(&ours)), transfers(packets(&recorded)));
        assert_eq!(ours.len(), 6);
        for ((mine, theirs), transfer) in ours.iter().zip(&recorded).zip(expected()) {
            assert_eq!(mine.len(), theirs.len(), "packet count of {transfer}");
            let pickle = transfer["format"] == "binary";
            for (a, b) in mine.iter().zip(theirs) {
                assert_eq!((a.initial, a.final_, a.meta), (b.initial, b.final_, b.meta));
                let encrypted =
                    a.meta.is_some_and(|meta| meta.encrypted()) || transfer["encrypted"] == true;
                let (plain_a, plain_b) = if encrypted {
                    (
                        key.decrypt(&a.payload).unwrap(),
                        key.decrypt(&b.payload).unwrap(),
                    )
                } else {
                    (a.payload.to_vec(), b.payload.to_vec())
                };
                if pickle {
                    // Ferry writes pickle protocol 3, Python 4: same content, other bytes.
                    let ours =
                        ferry_codec::decode(Serialization::Binary, &plain_a, &Default::default())
                            .unwrap();
                    let theirs =
                        ferry_codec::decode(Serialization::Binary, &plain_b, &Default::default())
                            .unwrap();
                    assert_eq!(ours, theirs);
                    assert_eq!(Value::Object(ours), transfer["content"]);
                } else {
                    assert_eq!(
                        a.payload.len(),
                        b.payload.len(),
                        "payload length in {}",
                        transfer["format"]
                    );
                    assert_eq!(plain_a, plain_b, "payload of {}", transfer["format"]);
                }
            }
        }
    }
}

#[test]
fn ferrys_cli_works_against_the_legacy_server() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received.jsonl");
    let key = session_dir().join("example.key");
    let mut legacy = std::process::Command::new("python3")
        .arg(crate::harness::python_script("legacy_server.py"))
        .args([
            "--key",
            key.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(legacy.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let server = format!("127.0.0.1:{port}");

    let mut sent = Vec::new();
    for (index, transfer) in expected().iter().enumerate() {
        let encrypt = transfer["encrypted"].as_bool().unwrap();
        let mut args = vec![
            "send".to_owned(),
            "--server".into(),
            server.clone(),
            "--fernet-key".into(),
            key.to_str().unwrap().into(),
        ];
        let path = dir.path().join(format!("item{index}"));
        if data_type(transfer) == "text" {
            std::fs::write(&path, transfer["content"].as_str().unwrap()).unwrap();
            args.extend(["file".into()]);
        } else {
            std::fs::write(&path, transfer["content"].to_string()).unwrap();
            let format = if transfer["format"] == "binary" {
                "pickle"
            } else {
                transfer["format"].as_str().unwrap()
            };
            args.extend(["dict".into(), "--format".into(), format.into()]);
        }
        if encrypt {
            args.push("--encrypt".into());
        }
        args.push(path.to_str().unwrap().into());
        let output = std::process::Command::new(crate::harness::bin("ferry"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ferry {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(": OK ("),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        sent.push(transfer.clone());
    }
    let _ = legacy.kill();
    let _ = legacy.wait();
    let received: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn ferrys_client_gets_item_ids_from_ferrys_server() {
    let server = Server::start(&[]);
    let options = Options {
        fernet: Some(Arc::new(
            FernetKey::load(&server.fernet_key_file()).unwrap(),
        )),
        ..Options::default()
    };
    let mut session = Session::connect(&server.tcp(), options).await.unwrap();
    let receipt = session
        .send_bytes(Meta::text(true), b"hello", Some("hello.txt"))
        .await
        .unwrap();
    session.end().await.unwrap();
    let id = receipt.id.expect("Ferry's server names the item");
    let items = server.admin().all_items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["name"], "hello.txt");
    assert_eq!(items[0]["sha256"], receipt.sha256.unwrap().as_str());
    assert_eq!(server.admin().content(&id).await, b"hello");
}

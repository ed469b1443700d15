//! Resumable uploads (extension 3): opened, appended over any number of
//! connections, finished into an item like any other; an offset the server
//! reports is durable, a cut append commits nothing, and a client that never
//! sent the hello hears nothing of any of it.

use std::time::Duration;

use crate::harness::{Heard, PATIENCE, TestServer, transfer};
use ferry_client::{ClientError, Options, Session, UploadErrorCode, UploadState};
use ferry_protocol::upload::{UploadReply, parse_json_line};
use ferry_protocol::{EXT_HELLO, Meta, Serialization, encode};
use ferry_server::{EncryptionPolicy, ServerConfig};
use ferry_store::Store;
use sha2::{Digest, Sha256};

/// Varied bytes, so that a misplaced piece shows.
fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn session(server: &TestServer) -> Session {
    let options = Options {
        fernet: server.fernet.clone(),
        ..Options::default()
    };
    let mut session = Session::connect(&server.addr.to_string(), options)
        .await
        .expect("connect");
    session.set_upload_probe_timeout(PATIENCE);
    session
}

/// Appends `bytes` at `offset` and returns the new state.
async fn append(session: &mut Session, id: &str, offset: u64, bytes: &[u8]) -> UploadState {
    session
        .upload_append(id, offset, bytes, bytes.len() as u64, &mut |_| {})
        .await
        .unwrap_or_else(|err| panic!("append at {offset}: {err}"))
}

fn code_of(err: &ClientError) -> (UploadErrorCode, Option<u64>) {
    match err {
        ClientError::Upload { code, offset, .. } => (*code, *offset),
        other => panic!("expected an upload error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upload_sent_in_appends_is_stored_byte_for_byte_with_the_sha256_of_the_whole() {
    for encrypted in [false, true] {
        let server = TestServer::start(ServerConfig::default()).await;
        let whole = data(300_001);
        let mut client = session(&server).await;
        let opened = client
            .upload_open(
                Meta::text(encrypted),
                Some(whole.len() as u64),
                Some("big.txt"),
            )
            .await
            .unwrap();
        assert_eq!((opened.offset, opened.length), (0, Some(300_001)));
        assert_eq!(opened.name.as_deref(), Some("big.txt"));
        assert_eq!(opened.encrypted_in_transit, encrypted);
        let mut offset = 0;
        for piece in whole.chunks(100_000) {
            let state = append(&mut client, &opened.id, offset, piece).await;
            offset += piece.len() as u64;
            assert_eq!(state.offset, offset);
        }
        assert_eq!(
            client.upload_state(&opened.id).await.unwrap().offset,
            300_001
        );
        assert!(
            server.items().await.is_empty(),
            "nothing listed before the finish"
        );

        let receipt = client.upload_finish(&opened.id).await.unwrap();
        let sha256 = hex::encode(Sha256::digest(&whole));
        assert_eq!(receipt.sha256.as_deref(), Some(sha256.as_str()));
        assert_eq!(receipt.size, 300_001);
        let items = server.items().await;
        assert_eq!(items.len(), 1);
        assert_eq!(Some(items[0].id.to_string()), receipt.id);
        assert_eq!(items[0].name.as_deref(), Some("big.txt"));
        assert_eq!(items[0].encrypted_in_transit, encrypted);
        assert_eq!(items[0].sha256, sha256);
        assert_eq!(server.content(&items[0]).await, whole);
        let gone = client.upload_state(&opened.id).await.unwrap_err();
        assert_eq!(code_of(&gone).0, UploadErrorCode::NotFound);
        // A finish whose answer was lost can be asked again.
        let again = client.upload_finish(&opened.id).await.unwrap();
        assert_eq!(again, receipt);
        assert_eq!(server.items().await.len(), 1, "stored once");
        client.end().await.unwrap();
    }
}

#[tokio::test]
async fn an_append_at_another_offset_is_answered_with_the_committed_offset() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = session(&server).await;
    let upload = client
        .upload_open(Meta::text(false), Some(2_000), None)
        .await
        .unwrap();
    append(&mut client, &upload.id, 0, &data(1_000)).await;
    for wrong in [0, 999, 1_001] {
        let err = client
            .upload_append(&upload.id, wrong, &b"x"[..], 1, &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), (UploadErrorCode::Offset, Some(1_000)));
    }
    let err = client
        .upload_append(&upload.id, 1_000, &data(1_001)[..], 1_001, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).0, UploadErrorCode::TooLarge, "{err}");
    let err = client.upload_finish(&upload.id).await.unwrap_err();
    assert_eq!(code_of(&err).0, UploadErrorCode::Incomplete, "{err}");
    assert_eq!(client.upload_state(&upload.id).await.unwrap().offset, 1_000);
    client.end().await.unwrap();
}

#[tokio::test]
async fn a_connection_cut_mid_append_leaves_the_last_committed_offset_and_another_continues() {
    let server = TestServer::start(ServerConfig::default()).await;
    let whole = data(500_000);
    let mut first = session(&server).await;
    let upload = first
        .upload_open(Meta::text(false), Some(500_000), Some("cut.txt"))
        .await
        .unwrap();
    append(&mut first, &upload.id, 0, &whole[..200_000]).await;
    drop(first);

    // A client that arms an append, sends part of its transfer and vanishes.
    let mut raw = server.connect().await;
    raw.send(&[EXT_HELLO]).await.unwrap();
    raw.send(&encode::upload_command(&format!(
        "append {} 200000",
        upload.id
    )))
    .await
    .unwrap();
    let armed = raw.reply().await;
    let (reply, _) = parse_json_line::<UploadReply>(armed.as_bytes())
        .unwrap()
        .expect("one line");
    assert!(reply.ok, "{armed}");
    let mut partial = transfer(Meta::text(false), &whole[200_000..400_000]);
    partial.truncate(150_000);
    raw.send(&partial).await.unwrap();
    drop(raw);

    let mut second = session(&server).await;
    assert_eq!(
        second.upload_state(&upload.id).await.unwrap().offset,
        200_000,
        "the cut append committed nothing"
    );
    // The server may not have seen the cut yet: the upload is busy until then.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let state = loop {
        match second
            .upload_append(&upload.id, 200_000, &whole[200_000..], 300_000, &mut |_| {})
            .await
        {
            Ok(state) => break state,
            Err(err) if code_of(&err).0 == UploadErrorCode::Busy => {
                assert!(tokio::time::Instant::now() < deadline, "still busy");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("{err}"),
        }
    };
    assert_eq!(state.offset, 500_000);
    let receipt = second.upload_finish(&upload.id).await.unwrap();
    second.end().await.unwrap();
    let items = server.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(Some(items[0].id.to_string()), receipt.id);
    assert_eq!(items[0].sha256, hex::encode(Sha256::digest(&whole)));
    assert_eq!(server.content(&items[0]).await, whole);
}

#[tokio::test]
async fn a_client_without_the_hello_hears_nothing_of_upload_bytes_and_its_transfers_work() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut legacy = server.connect().await;
    legacy
        .send(&encode::upload_command("open 00 5"))
        .await
        .unwrap();
    legacy.send(&encode::upload_command("bogus")).await.unwrap();
    assert_eq!(
        legacy.hear(Duration::from_millis(300)).await,
        Heard::Silence
    );
    let mut bytes = encode::upload_command("state 01JQ3V7ZK9T6N2XQ8W4R5B1C0D");
    bytes.extend(transfer(Meta::text(false), b"hello"));
    assert_eq!(
        legacy.exchange(&bytes).await,
        "OK",
        "exactly the legacy reply"
    );
    legacy.end().await;
    assert!(
        server.store.uploads().await.unwrap().is_empty(),
        "the open was ignored"
    );
    let items = server.items().await;
    assert_eq!(items.len(), 1);
    assert_eq!(server.content(&items[0]).await, b"hello");
}

#[tokio::test]
async fn bad_commands_dictionaries_and_refused_policies_are_answered_with_their_code() {
    let config = ServerConfig {
        encryption: EncryptionPolicy::Disabled,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config).await;
    let mut raw = server.connect().await;
    raw.send(&[EXT_HELLO]).await.unwrap();
    for (line, code) in [
        ("open 00", "bad_command"),
        ("state nope-not-an-id", "bad_command"),
        ("state 01JQ3V7ZK9T6N2XQ8W4R5B1C0D", "not_found"),
        ("open 02 10", "refused"),
        ("open 28 10", "refused"),
    ] {
        let reply = raw.exchange(&encode::upload_command(line)).await;
        let json: serde_json::Value = serde_json::from_str(reply.trim_end()).unwrap();
        assert_eq!(json["ok"], false, "{line}: {reply}");
        assert_eq!(json["code"], code, "{line}: {reply}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{reply}"
        );
    }
    // The connection still takes transfers, answered with extended replies.
    let reply = raw.exchange(&transfer(Meta::text(false), b"still")).await;
    assert!(reply.starts_with("{\"ok\":true"), "{reply}");
    raw.end().await;
}

#[tokio::test]
async fn an_append_whose_meta_is_not_the_uploads_is_refused_and_commits_nothing() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = session(&server).await;
    let upload = client
        .upload_open(Meta::text(false), Some(10), None)
        .await
        .unwrap();
    drop(client);
    let mut raw = server.connect().await;
    raw.send(&[EXT_HELLO]).await.unwrap();
    let armed = raw
        .exchange(&encode::upload_command(&format!("append {} 0", upload.id)))
        .await;
    assert!(armed.starts_with("{\"ok\":true"), "{armed}");
    let json_meta = Meta::dictionary(Serialization::Json, false).unwrap();
    let reply = raw.exchange(&transfer(json_meta, b"{}")).await;
    assert!(reply.contains("\"code\":\"bad_command\""), "{reply}");
    assert!(
        reply.contains("meta byte 0x28 is not the upload's 0x00"),
        "{reply}"
    );
    // The next transfer is an ordinary one again.
    let reply = raw.exchange(&transfer(Meta::text(false), b"plain")).await;
    assert!(reply.contains("\"sha256\""), "{reply}");
    raw.end().await;
    let mut client = session(&server).await;
    assert_eq!(client.upload_state(&upload.id).await.unwrap().offset, 0);
    client.upload_cancel(&upload.id).await.unwrap();
    let err = client.upload_state(&upload.id).await.unwrap_err();
    assert_eq!(code_of(&err).0, UploadErrorCode::NotFound);
    client.end().await.unwrap();
}

#[tokio::test]
async fn an_upload_opened_without_a_length_takes_it_later() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut client = session(&server).await;
    let upload = client
        .upload_open(Meta::text(false), None, Some("later.txt"))
        .await
        .unwrap();
    assert_eq!(upload.length, None);
    append(&mut client, &upload.id, 0, b"abc").await;
    let err = client.upload_set_length(&upload.id, 2).await.unwrap_err();
    assert_eq!(code_of(&err).0, UploadErrorCode::Length);
    let state = client.upload_set_length(&upload.id, 6).await.unwrap();
    assert_eq!(state.length, Some(6));
    append(&mut client, &upload.id, 3, b"def").await;
    client.upload_finish(&upload.id).await.unwrap();
    client.end().await.unwrap();
    let items = server.items().await;
    assert_eq!(server.content(&items[0]).await, b"abcdef");
}

#[tokio::test]
async fn a_run_byte_inside_a_transfer_breaks_the_framing() {
    let server = TestServer::start(ServerConfig::default()).await;
    let mut raw = server.connect().await;
    let mut bytes = vec![EXT_HELLO];
    let mut open = bytes::BytesMut::new();
    encode::packet(&mut open, Some(Meta::text(false)), false, b"part");
    bytes.extend_from_slice(&open);
    bytes.extend(encode::upload_command("state 01JQ3V7ZK9T6N2XQ8W4R5B1C0D"));
    let reply = raw.exchange(&bytes).await;
    assert!(reply.contains("protocol error"), "{reply}");
    raw.assert_closed(PATIENCE).await;
}

//! `ferry send --receipts DIR` against a native server that answers each
//! transfer with an extended reply, with or without a receipt.

use std::path::Path;

use bytes::BytesMut;
use ferry_protocol::{Decoder, ExtendedReply, Frame};
use ferry_tlog::Receipt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{TestLog, assert_exit, ferry, stderr};

/// A native server on port 0 that answers transfer `n` of each session with
/// the receipt of leaf `n` of `log` when `receipts`, or without one.
async fn serve(log: TestLog, receipts: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = BytesMut::new();
            let mut transfers = 0;
            loop {
                match Decoder.decode(&mut buf).unwrap() {
                    Some(Frame::End) => break,
                    Some(Frame::Packet(packet)) if packet.final_ => {
                        let reply = ExtendedReply {
                            ok: true,
                            id: Some(log.entries[transfers].id().to_owned()),
                            receipt: receipts.then(|| {
                                serde_json::to_value(log.receipt(transfers as u64)).unwrap()
                            }),
                            ..ExtendedReply::default()
                        };
                        stream.write_all(&reply.to_bytes()).await.unwrap();
                        transfers += 1;
                    }
                    Some(_) => {}
                    None => {
                        if stream.read_buf(&mut buf).await.unwrap() == 0 {
                            break;
                        }
                    }
                }
            }
        }
    });
    addr
}

fn write_items(dir: &Path) {
    std::fs::write(dir.join("a.txt"), "first\n").unwrap();
    std::fs::write(dir.join("b.txt"), "second\n").unwrap();
}

#[tokio::test]
async fn each_receipt_is_saved_as_sent_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    write_items(dir.path());
    let log = TestLog::new(7, 2, 0);
    let (key, expected) = (log.key(), [log.receipt(0), log.receipt(1)]);
    let server = serve(log, true).await;
    let output = ferry(
        dir.path(),
        &[
            "send",
            "--server",
            &server,
            "--receipts",
            "out/receipts",
            "file",
            "a.txt",
            "b.txt",
        ],
    )
    .await;
    assert_exit(&output, 0);
    for receipt in expected {
        let path = dir
            .path()
            .join(format!("out/receipts/{}.receipt.json", receipt.id));
        let saved: Receipt = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved, receipt);
        let output = ferry(
            dir.path(),
            &["verify", path.to_str().unwrap(), "--key", &key],
        )
        .await;
        assert_exit(&output, 0);
    }
}

#[tokio::test]
async fn items_without_a_receipt_exit_3_when_receipts_were_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    write_items(dir.path());
    let server = serve(TestLog::new(7, 2, 0), false).await;
    let output = ferry(
        dir.path(),
        &[
            "send",
            "--server",
            &server,
            "--receipts",
            "r",
            "file",
            "a.txt",
            "b.txt",
        ],
    )
    .await;
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert_eq!(err.matches("warning:").count(), 1, "said once: {err}");
    assert!(err.contains("2 of 2 items"), "{err}");
    assert!(
        !dir.path().join("r").exists()
            || std::fs::read_dir(dir.path().join("r")).unwrap().count() == 0
    );

    let output = ferry(dir.path(), &["send", "--server", &server, "file", "a.txt"]).await;
    assert_exit(&output, 0);
}

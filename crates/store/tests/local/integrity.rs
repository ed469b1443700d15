//! Tampered records are refused when read and left out of the listing at startup.

use std::fs;
use std::path::Path;

use ferry_crypto::StorageKey;
use ferry_store::{ItemMeta, Store, StoreError};

use crate::helpers::*;

fn flip(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

fn assert_integrity(result: Result<Vec<u8>, StoreError>, meta: &ItemMeta) {
    match result {
        Err(StoreError::Integrity { id, reason }) => {
            assert_eq!(id, meta.id);
            assert!(!reason.is_empty());
        }
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tampered_item_file_is_refused_and_skipped_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let chunk_tampered = put(&*store, dict("10.0.0.1:1"), &content(600_000, 1)).await;
    let meta_tampered = put(&*store, dict("10.0.0.1:1"), &content(600_000, 2)).await;
    let fine = put(&*store, dict("10.0.0.1:1"), &content(600_000, 3)).await;
    let file = |m: &ItemMeta| dir.path().join("items").join(format!("{}.rec", m.id));

    // A flipped bit in a data chunk: the stream fails at that chunk.
    flip(&file(&chunk_tampered), 300_000);
    let err = read(&*store, &chunk_tampered, None).await;
    assert_integrity(err, &chunk_tampered);
    // A flipped bit in the metadata block: refused on open.
    let len = fs::metadata(file(&meta_tampered)).unwrap().len();
    flip(&file(&meta_tampered), len - 40);
    let err = store.open(meta_tampered.id, None).await.map(|_| Vec::new());
    assert_integrity(err, &meta_tampered);
    drop(store);

    let store = open(dir.path(), &key).await;
    assert!(
        store.get(meta_tampered.id).await.unwrap().is_none(),
        "metadata tampering is caught at startup"
    );
    assert!(store.get(fine.id).await.unwrap().is_some());
    assert_eq!(
        read(&*store, &fine, None).await.unwrap(),
        content(600_000, 3)
    );
    assert_integrity(read(&*store, &chunk_tampered, None).await, &chunk_tampered);
}

#[tokio::test]
async fn a_record_moved_to_another_items_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let a = put(&*store, dict("10.0.0.1:1"), &content(600_000, 1)).await;
    let b = put(&*store, dict("10.0.0.1:1"), &content(600_000, 2)).await;
    let file = |m: &ItemMeta| dir.path().join("items").join(format!("{}.rec", m.id));
    fs::copy(file(&a), file(&b)).unwrap();
    assert_integrity(store.open(b.id, None).await.map(|_| Vec::new()), &b);
    drop(store);
    let store = open(dir.path(), &key).await;
    assert_eq!(store.count().await, 1);
    assert!(store.get(b.id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_tampered_log_record_is_refused_and_skipped_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let metas: Vec<ItemMeta> = futures::future::join_all((0..3u8).map(|i| {
        let store = store.clone();
        async move { put(&*store, dict("10.0.0.1:1"), &content(1000, i)).await }
    }))
    .await;
    // Frames follow each other; find the middle one by its sealed content.
    let segment = dir.path().join("segments").join("00000001.log");
    let bytes = fs::read(&segment).unwrap();
    let starts = crate::frames::starts(&bytes);
    assert_eq!(starts.len(), 3);
    let middle_at = starts[1];
    // Which item is the middle frame? The one whose read fails after the flip.
    flip(&segment, (middle_at + 16 + 100) as u64);
    let mut refused = Vec::new();
    for meta in &metas {
        if let Err(err) = read(&*store, meta, None).await {
            assert!(
                matches!(err, StoreError::Integrity { id, .. } if id == meta.id),
                "{err}"
            );
            refused.push(meta.id);
        }
    }
    assert_eq!(refused.len(), 1);

    // Recompute the frame's CRC so only authentication can catch it.
    let mut bytes = fs::read(&segment).unwrap();
    let crc = crate::frames::checksum(&bytes, 1, middle_at);
    bytes[middle_at + 12..middle_at + 16].copy_from_slice(&crc.to_le_bytes());
    fs::write(&segment, &bytes).unwrap();
    drop(store);

    // Read whole, as without a catalog (damage before its checkpoint is not
    // read again, see `catalog.rs`).
    crate::helpers::forget_catalog(dir.path());
    for _ in 0..2 {
        let store = open(dir.path(), &key).await;
        assert_eq!(store.count().await, 2);
        assert!(store.get(refused[0]).await.unwrap().is_none());
        // With a bad CRC as well, the frame is skipped and the next one still read.
        let mut bytes = fs::read(&segment).unwrap();
        bytes[middle_at + 12] ^= 0xff;
        fs::write(&segment, &bytes).unwrap();
        drop(store);
    }
}

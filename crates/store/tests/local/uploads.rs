//! Resumable uploads on the local store: appends at the committed offset, each
//! durable when it returns; a dropped append commits nothing; unfinished
//! uploads survive a reopen; a finish stores the whole like any item; cancel
//! and expiry remove the staged data; nothing staged is plaintext.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_crypto::StorageKey;
use ferry_store::{LocalOptions, LocalStore, Store, StoreError, UploadId};

use crate::helpers::{content, keyring, read, sha256_hex, text};

async fn open_with(dir: &Path, key: &StorageKey, ttl: Duration) -> Arc<LocalStore> {
    let options = LocalOptions {
        upload_ttl: ttl,
        ..LocalOptions::default()
    };
    LocalStore::open(dir, keyring(key), options).await.unwrap()
}

async fn append(store: &LocalStore, id: UploadId, offset: u64, bytes: &[u8]) -> u64 {
    let mut appender = store.upload_append(id, offset).await.unwrap();
    for piece in bytes.chunks(48_000) {
        appender.write(piece).await.unwrap();
    }
    appender.commit().await.unwrap().offset
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.push(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[tokio::test]
async fn an_upload_in_appends_becomes_an_item_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    let whole = content(700_001, 3);
    let upload = store
        .upload_create(text("127.0.0.1:9", "big.bin"), Some(whole.len() as u64))
        .await
        .unwrap();
    assert_eq!(
        (upload.offset, upload.length),
        (0, Some(whole.len() as u64))
    );
    let cuts = [0, 100_000, 165_536, 700_001];
    for pair in cuts.windows(2) {
        let offset = append(&store, upload.id, pair[0] as u64, &whole[pair[0]..pair[1]]).await;
        assert_eq!(offset, pair[1] as u64);
    }
    // Nothing staged is plaintext.
    let marker = &whole[200_000..200_064];
    for file in files(&dir.path().join("uploads")) {
        assert!(
            !file.windows(marker.len()).any(|w| w == marker),
            "plaintext in a staged file"
        );
    }
    let listed = store.uploads().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_complete());

    let meta = store.upload_finish(upload.id).await.unwrap();
    assert_eq!(meta.size, whole.len() as u64);
    assert_eq!(meta.sha256, sha256_hex(&whole));
    assert_eq!(meta.name.as_deref(), Some("big.bin"));
    assert_eq!(meta.received_at, upload.created_at);
    assert!(meta.log_index.is_some(), "a leaf in the log, like any item");
    assert_eq!(read(&*store, &meta, None).await.unwrap(), whole);
    assert_eq!(store.upload_info(upload.id).await.unwrap(), None);
    assert!(store.uploads().await.unwrap().is_empty());
    assert!(!dir.path().join(format!("uploads/{}", upload.id)).exists());
    assert!(matches!(
        store.upload_append(upload.id, 0).await.err(),
        Some(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn appends_start_at_the_committed_offset_one_at_a_time_and_a_dropped_one_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    let upload = store
        .upload_create(text("127.0.0.1:9", "a"), Some(10))
        .await
        .unwrap();
    assert_eq!(append(&store, upload.id, 0, b"01234").await, 5);
    match store.upload_append(upload.id, 3).await.err() {
        Some(StoreError::UploadOffset {
            expected: 5,
            given: 3,
        }) => {}
        other => panic!("{other:?}"),
    }
    let mut first = store.upload_append(upload.id, 5).await.unwrap();
    first.write(b"567").await.unwrap();
    assert!(matches!(
        store.upload_append(upload.id, 5).await.err(),
        Some(StoreError::UploadBusy)
    ));
    assert!(matches!(
        store.upload_finish(upload.id).await.err(),
        Some(StoreError::UploadBusy)
    ));
    drop(first);
    assert_eq!(
        store.upload_info(upload.id).await.unwrap().unwrap().offset,
        5
    );
    let mut appender = store.upload_append(upload.id, 5).await.unwrap();
    assert!(matches!(
        appender.write(b"567890").await.err(),
        Some(StoreError::UploadTooLarge { length: 10 })
    ));
    drop(appender);
    assert!(matches!(
        store.upload_finish(upload.id).await.err(),
        Some(StoreError::UploadIncomplete {
            offset: 5,
            length: Some(10)
        })
    ));
    assert_eq!(append(&store, upload.id, 5, b"56789").await, 10);
    let meta = store.upload_finish(upload.id).await.unwrap();
    assert_eq!(read(&*store, &meta, None).await.unwrap(), b"0123456789");
}

#[tokio::test]
async fn an_unfinished_upload_survives_a_reopen_and_finishes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let whole = content(300_000, 7);
    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    let upload = store
        .upload_create(text("127.0.0.1:9", "r"), None)
        .await
        .unwrap();
    append(&store, upload.id, 0, &whole[..123_457]).await;
    // An append cut short: dropped, and one the process left behind.
    let mut cut = store.upload_append(upload.id, 123_457).await.unwrap();
    cut.write(&whole[123_457..200_000]).await.unwrap();
    drop(cut);
    drop(store);
    let leftover = dir
        .path()
        .join(format!("uploads/{}/00000001.part", upload.id));
    std::fs::write(&leftover, b"half an append").unwrap();

    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    let info = store.upload_info(upload.id).await.unwrap().unwrap();
    assert_eq!((info.offset, info.length), (123_457, None));
    assert_eq!(info.created_at, upload.created_at);
    assert!(!leftover.exists());
    append(&store, upload.id, 123_457, &whole[123_457..]).await;
    match store.upload_set_length(upload.id, 1).await.err() {
        Some(StoreError::UploadLength(_)) => {}
        other => panic!("{other:?}"),
    }
    store
        .upload_set_length(upload.id, whole.len() as u64)
        .await
        .unwrap();
    let meta = store.upload_finish(upload.id).await.unwrap();
    assert_eq!(meta.sha256, sha256_hex(&whole));
    drop(store);
    // The item stays; the upload does not come back.
    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    assert_eq!(read(&*store, &meta, None).await.unwrap(), whole);
    assert!(store.uploads().await.unwrap().is_empty());
}

#[tokio::test]
async fn cancelled_and_expired_uploads_are_removed_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_with(dir.path(), &key, Duration::from_secs(60)).await;
    let cancelled = store
        .upload_create(text("127.0.0.1:9", "c"), Some(4))
        .await
        .unwrap();
    append(&store, cancelled.id, 0, b"ab").await;
    let idle = store
        .upload_create(text("127.0.0.1:9", "i"), Some(4))
        .await
        .unwrap();
    append(&store, idle.id, 0, b"cd").await;
    assert!(store.upload_cancel(cancelled.id).await.unwrap());
    assert!(!store.upload_cancel(cancelled.id).await.unwrap());
    assert!(
        !dir.path()
            .join(format!("uploads/{}", cancelled.id))
            .exists()
    );

    let info = store.upload_info(idle.id).await.unwrap().unwrap();
    assert_eq!(
        store
            .expire_uploads(info.expires_at - time::Duration::SECOND)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.expire_uploads(info.expires_at).await.unwrap(), 1);
    assert!(store.uploads().await.unwrap().is_empty());
    assert!(!dir.path().join(format!("uploads/{}", idle.id)).exists());
    drop(store);
    let store = open_with(dir.path(), &key, Duration::from_secs(60)).await;
    assert!(store.uploads().await.unwrap().is_empty());
}

/// The keys of an unfinished upload's pieces are in use after a reopen: none
/// is handed out again (to a later piece or to the finished item, whose key
/// the finish would then destroy with the upload's).
#[tokio::test]
async fn an_upload_finished_after_a_reopen_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let whole = content(400_000, 8);
    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    let upload = store
        .upload_create(text("127.0.0.1:9", "r"), Some(whole.len() as u64))
        .await
        .unwrap();
    for (from, to) in [(0, 100_000), (100_000, 200_000), (200_000, 300_000)] {
        append(&store, upload.id, from, &whole[from as usize..to]).await;
    }
    drop(store);

    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    append(&store, upload.id, 300_000, &whole[300_000..]).await;
    let meta = store.upload_finish(upload.id).await.unwrap();
    assert_eq!(read(&*store, &meta, None).await.unwrap(), whole);
    drop(store);
    let store = open_with(dir.path(), &key, Duration::from_secs(3600)).await;
    assert_eq!(read(&*store, &meta, None).await.unwrap(), whole);
}

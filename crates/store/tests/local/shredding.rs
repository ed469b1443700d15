//! Crypto-shredding: each item is sealed with its own data key, and a delete
//! destroys that key. A copy of the item's stored data taken before the delete
//! and put back after it stays unreadable: the store does not list it, the
//! storage key alone cannot open it, and no plaintext is anywhere on disk.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use ferry_crypto::{CryptoError, RecordReader, StorageKey};
use ferry_store::{ItemMeta, LocalOptions, LocalStore, Retention, Store, sweep_expired};

use crate::frames;
use crate::helpers::*;

/// Every file under `dir` (recursively), with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

/// The item data (log segments and item files, not the key store) in `files`.
fn item_data(files: &BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<PathBuf, Vec<u8>> {
    files
        .iter()
        .filter(|(path, _)| {
            let dir = path.parent().unwrap().file_name().unwrap();
            dir == "segments" || dir == "items"
        })
        .map(|(path, bytes)| (path.clone(), bytes.clone()))
        .collect()
}

/// The sealed records in the item data: each logged record's payload, and each
/// item file.
fn records(data: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    for (path, bytes) in data {
        if path.extension().is_some_and(|e| e == "rec") {
            records.push(bytes.clone());
            continue;
        }
        for at in frames::starts(bytes) {
            let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            if bytes[at + 4] == 1 {
                records.push(bytes[at + 16..at + 16 + len].to_vec());
            }
        }
    }
    records
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Content that is easy to find on disk, of `len` bytes.
fn secret(len: usize) -> Vec<u8> {
    b"TOP-SECRET-PLAINTEXT-"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// Puts a secret of `len` bytes and an item kept beside it; copies the item
/// data; `remove` deletes the secret (as a client's delete, or a retention
/// sweep); puts the copy back; and checks the secret cannot be read back.
async fn copy_back_after<F, Fut>(len: usize, remove: F)
where
    F: FnOnce(std::sync::Arc<LocalStore>, ItemMeta) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let kept = put(&*store, dict("10.0.0.1:1"), b"{\"kept\":true}").await;
    let victim = put(
        &*store,
        text("10.0.0.1:2", "payroll-secret-name.txt"),
        &secret(len),
    )
    .await;
    let copy = item_data(&snapshot(dir.path()));
    let sealed = records(&copy);
    assert_eq!(sealed.len(), 2, "both records are in the copy");

    remove(store.clone(), victim.clone()).await;
    assert!(store.get(victim.id).await.unwrap().is_none());
    drop(store);
    for (path, bytes) in &copy {
        std::fs::write(path, bytes).unwrap();
    }

    // The store does not list it, and cannot open it.
    let store = LocalStore::open(dir.path(), keyring(&key), LocalOptions::default())
        .await
        .unwrap();
    assert!(
        store.get(victim.id).await.unwrap().is_none(),
        "it came back"
    );
    assert!(store.open(victim.id, None).await.unwrap().is_none());
    assert_eq!(
        read(&*store, &kept, None).await.unwrap(),
        b"{\"kept\":true}"
    );
    assert_eq!(store.count().await, 1);
    drop(store);

    // The storage key alone opens neither record: each names its own data key.
    for record in &sealed {
        let Err(err) =
            RecordReader::open(&keyring(&key), Cursor::new(record), 0, record.len() as u64)
        else {
            panic!("the storage key alone opened a record");
        };
        assert!(
            matches!(&err, CryptoError::UnknownKey(id) if id.starts_with("dk-")),
            "{err}"
        );
    }
    // No plaintext anywhere: not the content, not the file name.
    for (path, bytes) in snapshot(dir.path()) {
        assert!(
            !contains(&bytes, b"TOP-SECRET") && !contains(&bytes, b"payroll-secret"),
            "plaintext in {}",
            path.display()
        );
    }
}

async fn delete(store: std::sync::Arc<LocalStore>, item: ItemMeta) {
    assert!(store.delete(item.id).await.unwrap());
}

#[tokio::test]
async fn a_deleted_small_items_log_record_put_back_does_not_read() {
    copy_back_after(5_000, delete).await;
}

#[tokio::test]
async fn a_deleted_large_items_file_put_back_does_not_read() {
    copy_back_after(3_000_000, delete).await;
}

/// A retention sweep a day after the item arrived, with text kept for an hour.
async fn expire(store: std::sync::Arc<LocalStore>, item: ItemMeta) {
    let retention: Retention = "text=1h".parse().unwrap();
    let later = item.received_at + time::Duration::days(1);
    let swept = sweep_expired(&*store, &retention, later).await.unwrap();
    assert_eq!(swept.expired, 1, "only the text item expires");
}

#[tokio::test]
async fn an_expired_small_items_log_record_put_back_does_not_read() {
    copy_back_after(5_000, expire).await;
}

#[tokio::test]
async fn an_expired_large_items_file_put_back_does_not_read() {
    copy_back_after(3_000_000, expire).await;
}

#[tokio::test]
async fn a_store_whose_key_store_is_missing_refuses_to_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let small = put(&*store, dict("10.0.0.1:1"), b"{}").await;
    let large = put(&*store, dict("10.0.0.1:1"), &secret(1_000_000)).await;
    drop(store);
    let keys = dir.path().join("keys");
    let aside = dir.path().join("keys-aside");
    std::fs::rename(&keys, &aside).unwrap();
    let before = item_data(&snapshot(dir.path()));
    for _ in 0..2 {
        match LocalStore::open(dir.path(), keyring(&key), LocalOptions::default()).await {
            Err(err @ ferry_store::StoreError::KeyStoreIncomplete { records: 2 }) => {
                assert!(err.to_string().contains("restore keys/"), "{err}");
            }
            other => panic!("expected KeyStoreIncomplete, got {other:?}"),
        }
        assert_eq!(
            item_data(&snapshot(dir.path())),
            before,
            "the store changed"
        );
    }
    std::fs::remove_dir_all(&keys).unwrap();
    std::fs::rename(&aside, &keys).unwrap();
    let store = open(dir.path(), &key).await;
    assert_eq!(read(&*store, &small, None).await.unwrap(), b"{}");
    assert_eq!(
        read(&*store, &large, None).await.unwrap(),
        secret(1_000_000)
    );
}

//! Records the given keys cannot open are never destroyed: a store holding
//! records sealed with a key that was not given refuses to open (naming the key
//! ids), unless told to start anyway, and then it serves what it can read and
//! touches nothing else.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ferry_crypto::{Keyring, StorageKey};
use ferry_store::{ItemMeta, LocalOptions, LocalStore, Store, StoreError};

use crate::helpers::*;

/// Small segments, so that a few items span several.
fn options(allow_missing_keys: bool) -> LocalOptions {
    LocalOptions {
        segment_size: 64 << 10,
        allow_missing_keys,
        ..LocalOptions::default()
    }
}

async fn open_with(
    dir: &Path,
    keyring: Keyring,
    allow_missing_keys: bool,
) -> Result<std::sync::Arc<LocalStore>, StoreError> {
    LocalStore::open(dir, keyring, options(allow_missing_keys)).await
}

/// Every file of the store and its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for sub in ["segments", "items", "tmp"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            files.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
    files
}

/// 40 small items over several segments and 2 large ones; 10 small ones deleted.
async fn fill(dir: &Path, key: &StorageKey) -> (Vec<(ItemMeta, Vec<u8>)>, Vec<ItemMeta>) {
    let store = open_with(dir, keyring(key), false).await.unwrap();
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    for i in 0..42u8 {
        let len = if i % 20 == 19 { 400_000 } else { 6_000 };
        let data = content(len, i);
        let meta = put(&*store, dict("10.0.0.1:1"), &data).await;
        if i % 4 == 1 {
            assert!(store.delete(meta.id).await.unwrap());
            deleted.push(meta);
        } else {
            kept.push((meta, data));
        }
    }
    (kept, deleted)
}

async fn assert_all_there(store: &LocalStore, kept: &[(ItemMeta, Vec<u8>)], deleted: &[ItemMeta]) {
    assert_eq!(store.count().await, kept.len());
    for (meta, data) in kept {
        assert_eq!(&read(store, meta, None).await.unwrap(), data);
    }
    for meta in deleted {
        assert!(
            store.get(meta.id).await.unwrap().is_none(),
            "{} came back",
            meta.id
        );
    }
}

#[tokio::test]
async fn a_store_sealed_with_a_key_not_given_refuses_to_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let (kept, deleted) = fill(dir.path(), &key).await;
    assert!(dir.path().join("segments/00000004.log").exists());
    // A torn tail and a leftover: the refusal must not touch them either.
    let last = (1..100)
        .rev()
        .map(|n| dir.path().join(format!("segments/{n:08}.log")))
        .find(|p| p.exists())
        .unwrap();
    let mut bytes = fs::read(&last).unwrap();
    bytes.extend_from_slice(b"FRYL\x01\x01\0\0torn");
    fs::write(&last, bytes).unwrap();
    fs::write(
        dir.path().join("tmp/01J0000000000000000000000.part"),
        b"partial",
    )
    .unwrap();
    let before = files(dir.path());

    let other = StorageKey::generate();
    match open_with(dir.path(), keyring(&other), false).await {
        Err(StoreError::MissingKeys { key_ids, records }) => {
            assert_eq!(key_ids, vec![key.id().to_owned()]);
            assert!(records >= kept.len(), "{records}");
        }
        other => panic!("expected MissingKeys, got {other:?}"),
    }
    assert_eq!(files(dir.path()), before, "the store changed");

    // Given as an older key, it opens everything.
    let store = open_with(
        dir.path(),
        Keyring::new(other.clone(), vec![key.clone()]),
        false,
    )
    .await
    .unwrap();
    assert_all_there(&store, &kept, &deleted).await;
}

#[tokio::test]
async fn starting_anyway_serves_what_it_reads_and_touches_nothing_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let (kept, deleted) = fill(dir.path(), &key).await;
    let before = files(dir.path());

    let other = StorageKey::generate();
    let store = open_with(dir.path(), keyring(&other), true).await.unwrap();
    assert_eq!(store.count().await, 0);
    // New items and their deletes work; nothing unreadable goes.
    let mut new = Vec::new();
    for i in 0..30u8 {
        let meta = put(&*store, dict("10.0.0.2:1"), &content(6_000, i)).await;
        if i % 2 == 0 {
            assert!(store.delete(meta.id).await.unwrap());
        } else {
            new.push(meta);
        }
    }
    drop(store);
    let after = files(dir.path());
    for (file, bytes) in &before {
        let now = after
            .get(file)
            .unwrap_or_else(|| panic!("{} removed", file.display()));
        assert!(now.starts_with(bytes), "{} changed", file.display());
    }

    let store = open_with(dir.path(), Keyring::new(other, vec![key]), false)
        .await
        .unwrap();
    assert_eq!(store.count().await, kept.len() + new.len());
    for (meta, data) in &kept {
        assert_eq!(&read(&*store, meta, None).await.unwrap(), data);
    }
    for meta in &deleted {
        assert!(
            store.get(meta.id).await.unwrap().is_none(),
            "{} came back",
            meta.id
        );
    }
}

#[tokio::test]
async fn a_segment_holding_a_record_that_fails_authentication_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_with(dir.path(), keyring(&key), false).await.unwrap();
    // One item per segment.
    let mut metas = Vec::new();
    for i in 0..3u8 {
        metas.push(put(&*store, dict("10.0.0.1:1"), &content(40_000, i)).await);
    }
    drop(store);
    let first = dir.path().join("segments/00000001.log");
    // Its checksum made to match again, so only authentication catches it.
    crate::frames::damage_payload(&first, 0, 100);
    // Read whole, as without a catalog (damage past its checkpoint is not read).
    crate::helpers::forget_catalog(dir.path());
    let store = open_with(dir.path(), keyring(&key), false).await.unwrap();
    assert!(store.get(metas[0].id).await.unwrap().is_none());
    assert_eq!(store.count().await, 2);
    drop(store);
    assert!(
        first.exists(),
        "the segment with an unreadable record was removed"
    );
}

//! The catalog (`DIR/catalog/`): derived from the log and the item files,
//! resumed from its cursor at open, rebuilt when lost or damaged.

use std::fs;
use std::path::Path;

use ferry_crypto::StorageKey;
use ferry_store::{ItemMeta, ListQuery, LocalOptions, LocalStore, Store, StoreError};

use crate::helpers::*;

/// Every item listed, newest first, with its content.
async fn listed(store: &dyn Store) -> Vec<(ItemMeta, Vec<u8>)> {
    let mut all = Vec::new();
    for meta in store.list(&ListQuery::default()).await.unwrap().items {
        let data = read(store, &meta, None).await.unwrap();
        all.push((meta, data));
    }
    all
}

/// A store with small and large items, one of them deleted; what it lists.
async fn filled(dir: &Path, key: &StorageKey) -> Vec<(ItemMeta, Vec<u8>)> {
    let store = open(dir, key).await;
    let mut metas = Vec::new();
    for i in 0..5u8 {
        metas.push(put(&*store, dict("10.0.0.1:1"), &content(500, i)).await);
    }
    metas.push(put(&*store, text("10.0.0.2:2", "big.txt"), &content(400_000, 9)).await);
    assert!(store.delete(metas[1].id).await.unwrap());
    let all = listed(&*store).await;
    assert_eq!(all.len(), 5);
    all
}

#[tokio::test]
async fn a_deleted_catalog_is_rebuilt_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let before = filled(dir.path(), &key).await;
    forget_catalog(dir.path());
    let store = open(dir.path(), &key).await;
    assert_eq!(listed(&*store).await, before);
    drop(store);
    // And resumed from at the next open.
    let store = open(dir.path(), &key).await;
    assert_eq!(listed(&*store).await, before);
}

#[tokio::test]
async fn a_corrupt_catalog_file_is_rebuilt_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let before = filled(dir.path(), &key).await;
    let file = dir.path().join("catalog/catalog.redb");
    let len = fs::metadata(&file).unwrap().len() as usize;
    fs::write(&file, vec![0x5a; len]).unwrap();
    let store = open(dir.path(), &key).await;
    assert_eq!(listed(&*store).await, before);
}

/// The catalog as it was before the last items were applied to it (their
/// applies not durable when the process stopped): the log from its cursor is
/// replayed, and lists them.
#[tokio::test]
async fn items_committed_after_the_catalogs_last_durable_state_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let early = put(&*store, dict("10.0.0.1:1"), b"early").await;
    drop(store);
    let saved = fs::read(dir.path().join("catalog/catalog.redb")).unwrap();

    let store = open(dir.path(), &key).await;
    let mut late = Vec::new();
    for i in 0..4u8 {
        late.push(put(&*store, dict("10.0.0.1:1"), &content(300, i)).await);
    }
    late.push(put(&*store, text("10.0.0.2:2", "big.txt"), &content(400_000, 7)).await);
    assert!(store.delete(early.id).await.unwrap());
    let before = listed(&*store).await;
    drop(store);

    fs::write(dir.path().join("catalog/catalog.redb"), saved).unwrap();
    let store = open(dir.path(), &key).await;
    assert_eq!(listed(&*store).await, before);
    assert!(store.get(early.id).await.unwrap().is_none());
    for meta in &late {
        assert!(store.get(meta.id).await.unwrap().is_some());
    }
}

/// A store closed cleanly checkpoints its catalog: the next open reads nothing
/// of the log before it. A record damaged there is not read again (it stays
/// listed, and fails authentication when read) until the catalog is lost.
#[tokio::test]
async fn an_open_resumes_from_the_cursor_and_reads_nothing_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let options = LocalOptions {
        ledger: false,
        ..LocalOptions::default()
    };
    let open = || LocalStore::open(dir.path(), keyring(&key), options.clone());
    let store = open().await.unwrap();
    let mut metas = Vec::new();
    for i in 0..3u8 {
        metas.push(put(&*store, dict("10.0.0.1:1"), &content(1000, i)).await);
    }
    drop(store);
    let segment = dir.path().join("segments/00000001.log");
    crate::frames::damage_payload(&segment, 0, 100);

    let store = open().await.unwrap();
    assert_eq!(store.count().await, 3, "the damaged record was read again");
    assert!(matches!(
        read(&*store, &metas[0], None).await,
        Err(StoreError::Integrity { .. })
    ));
    drop(store);
    forget_catalog(dir.path());
    let store = open().await.unwrap();
    assert_eq!(store.count().await, 2);
    assert!(store.get(metas[0].id).await.unwrap().is_none());
}

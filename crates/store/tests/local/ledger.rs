//! The store's log (`ledger/`): a leaf for every commit, before every delete,
//! kept across reopens; leaves for the items of a store written without it; and
//! a changed, removed or reordered leaf makes the notary's check fail.

use std::path::Path;
use std::sync::Arc;

use ferry_crypto::StorageKey;
use ferry_store::{ItemMeta, ListQuery, LocalOptions, LocalStore, Notary, Store, stored_entry};
use ferry_tlog::{Event, Signer};

use crate::helpers::{content, dict, keyring, open, put, text};

async fn open_with(dir: &Path, key: &StorageKey, ledger: bool) -> Arc<LocalStore> {
    let options = LocalOptions {
        ledger,
        ..LocalOptions::default()
    };
    LocalStore::open(dir, keyring(key), options).await.unwrap()
}

/// Every listed item's `stored` leaf is its own.
async fn assert_leaves_match(store: &LocalStore) -> Vec<ItemMeta> {
    let ledger = store.ledger().unwrap();
    let items = store.list(&ListQuery::default()).await.unwrap().items;
    for meta in &items {
        let index = meta.log_index.expect("every item has a leaf");
        let leaves = ledger.leaves(index, 1).await.unwrap();
        assert_eq!(leaves[0].1, stored_entry(meta));
    }
    items
}

#[tokio::test]
async fn every_commit_and_delete_is_a_leaf_and_a_reopen_keeps_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let mut metas = Vec::new();
    for n in 0..10u8 {
        metas.push(put(&*store, dict("127.0.0.1:1"), &content(100, n)).await);
    }
    // A large item (its own file) too.
    metas.push(
        put(
            &*store,
            text("127.0.0.1:2", "big.txt"),
            &content(600_000, 9),
        )
        .await,
    );
    let indices: Vec<u64> = metas.iter().map(|m| m.log_index.unwrap()).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), metas.len(), "one leaf each: {indices:?}");
    assert!(store.delete(metas[3].id).await.unwrap());
    let ledger = store.ledger().unwrap();
    let size = ledger.size();
    let root = ledger.root(size).unwrap();
    let last = ledger.leaves(size - 1, 1).await.unwrap();
    assert_eq!(last[0].1.event(), Event::Deleted);
    assert_eq!(last[0].1.id(), metas[3].id.to_string());
    assert_leaves_match(&store).await;
    drop((store, ledger));

    let store = open(dir.path(), &key).await;
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger.size(), size, "nothing appended at a clean reopen");
    assert_eq!(ledger.root(size).unwrap(), root);
    assert!(ledger.problems().is_empty());
    let listed = assert_leaves_match(&store).await;
    assert_eq!(listed.len(), metas.len() - 1);
}

#[tokio::test]
async fn a_store_written_without_its_log_gets_the_leaves_of_its_items_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_with(dir.path(), &key, false).await;
    assert!(store.ledger().is_none());
    let mut metas = Vec::new();
    for n in 0..3u8 {
        let meta = put(&*store, dict("127.0.0.1:1"), &content(50, n)).await;
        assert_eq!(meta.log_index, None);
        metas.push(meta);
    }
    drop(store);
    let store = open_with(dir.path(), &key, true).await;
    let items = assert_leaves_match(&store).await;
    // In the order they were stored.
    let mut by_index: Vec<_> = items.iter().map(|m| (m.log_index.unwrap(), m.id)).collect();
    by_index.sort_unstable();
    let ids: Vec<_> = by_index.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, metas.iter().map(|m| m.id).collect::<Vec<_>>());
}

/// A store of six items, the first deleted, and a notary's checkpoint of the
/// seven leaves; its ledger segment.
async fn signed_store(dir: &Path, key: &StorageKey, signer: &Signer) -> std::path::PathBuf {
    let store = open(dir, key).await;
    let mut first = None;
    for n in 0..6u8 {
        let meta = put(&*store, dict("127.0.0.1:1"), &content(40, n)).await;
        first.get_or_insert(meta.id);
    }
    assert!(store.delete(first.unwrap()).await.unwrap());
    let notary = Notary::start(signer.clone(), store.ledger().unwrap())
        .await
        .unwrap();
    assert_eq!(notary.publish().await.unwrap().unwrap().size, 7);
    assert!(notary.health().ok);
    dir.join("ledger/00000000.log")
}

/// Where each leaf frame starts, and its whole length.
fn frames(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + 16 <= segment.len() && &segment[at..at + 4] == b"FRYL" {
        let len = u32::from_le_bytes(segment[at + 8..at + 12].try_into().unwrap()) as usize;
        found.push((at, 16 + len));
        at += 16 + len;
    }
    found
}

async fn check_after(tamper: impl FnOnce(&mut Vec<u8>)) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let signer = Signer::generate("test.example/log").unwrap();
    let path = signed_store(dir.path(), &key, &signer).await;
    let mut bytes = std::fs::read(&path).unwrap();
    tamper(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    let store = open(dir.path(), &key).await;
    let notary = Notary::start(signer, store.ledger().unwrap())
        .await
        .unwrap();
    let check = notary.health();
    assert!(!check.ok, "the tampered log verified");
    assert_eq!(check.checkpoint_size, Some(7));
    // Nothing is published over it.
    assert!(notary.latest().is_none());
    assert!(notary.publish().await.unwrap().is_none());
    check.problems
}

/// The last leaf (the delete) removed: the item is gone, its delete is not
/// logged any more, so the log says it was never committed, and no longer
/// matches what was signed.
#[tokio::test]
async fn a_removed_leaf_fails_the_check() {
    let problems = check_after(|bytes| {
        let (at, _) = *frames(bytes).last().unwrap();
        bytes.truncate(at);
    })
    .await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not those of the last signed checkpoint")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn reordered_leaves_fail_the_check() {
    let problems = check_after(|bytes| {
        let all = frames(bytes);
        let ((a, len_a), (b, len_b)) = (all[1], all[2]);
        assert_eq!(a + len_a, b, "neighbours");
        let mut swapped = bytes[b..b + len_b].to_vec();
        swapped.extend_from_slice(&bytes[a..a + len_a]);
        bytes[a..b + len_b].copy_from_slice(&swapped);
    })
    .await;
    assert!(
        problems.iter().any(|p| p.contains("damaged")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_changed_leaf_fails_the_check() {
    let problems = check_after(|bytes| {
        let (at, len) = frames(bytes)[2];
        let sha = bytes[at..at + len]
            .windows(7)
            .position(|w| w == b"sha256 ")
            .unwrap();
        bytes[at + sha + 7] ^= 0x01;
    })
    .await;
    assert!(!problems.is_empty());
}

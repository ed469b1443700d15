//! Log space comes back as items are deleted: mostly deleted segments are
//! compacted, segments that list nothing are removed; nothing deleted comes back
//! and nothing listed is lost, across reopens and concurrent commits, deletes and
//! reads.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferry_crypto::StorageKey;
use ferry_store::{ItemId, ItemMeta, LocalOptions, LocalStore, Store};

use crate::helpers::*;

/// About four 10 kB items per segment.
const SEGMENT_SIZE: u64 = 50_000;

async fn open_small(dir: &Path, key: &StorageKey) -> Arc<LocalStore> {
    let options = LocalOptions {
        segment_size: SEGMENT_SIZE,
        ..LocalOptions::default()
    };
    LocalStore::open(dir, keyring(key), options).await.unwrap()
}

fn segment_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

async fn put_items(store: &dyn Store, count: u8) -> Vec<ItemMeta> {
    let mut metas = Vec::new();
    for i in 0..count {
        metas.push(put(store, dict("10.0.0.1:1"), &content(10_000, i)).await);
    }
    metas
}

async fn listed_ids(store: &dyn Store) -> BTreeSet<ItemId> {
    let page = store.list(&Default::default()).await.unwrap();
    page.items.iter().map(|m| m.id).collect()
}

/// The items of `metas` (made by [`put_items`]) that `keep` keeps, with their
/// index, and the ids of the others.
fn split(
    metas: &[ItemMeta],
    keep: impl Fn(usize) -> bool,
) -> (Vec<(usize, ItemMeta)>, Vec<ItemId>) {
    let mut kept = Vec::new();
    let mut others = Vec::new();
    for (i, meta) in metas.iter().enumerate() {
        if keep(i) {
            kept.push((i, meta.clone()));
        } else {
            others.push(meta.id);
        }
    }
    (kept, others)
}

fn ids(metas: &[ItemMeta]) -> Vec<ItemId> {
    metas.iter().map(|m| m.id).collect()
}

async fn delete_all(store: &dyn Store, ids: &[ItemId]) {
    for id in ids {
        assert!(store.delete(*id).await.unwrap());
    }
}

/// `store` lists exactly the items of `kept` (made by [`put_items`]), and each
/// reads back whole.
async fn assert_lists_exactly(store: &dyn Store, kept: &[(usize, ItemMeta)]) {
    let expected: BTreeSet<ItemId> = kept.iter().map(|(_, m)| m.id).collect();
    assert_eq!(listed_ids(store).await, expected);
    for (i, meta) in kept {
        assert_eq!(
            read(store, meta, None).await.unwrap(),
            content(10_000, *i as u8)
        );
    }
}

/// Of the segments `before`, only the last (the one appended to) is `after`.
fn assert_all_gone_but_the_last(before: &BTreeSet<String>, after: &BTreeSet<String>) {
    let current = before.last().unwrap();
    for old in before.iter().filter(|name| *name != current) {
        assert!(!after.contains(old), "{old}: {before:?} -> {after:?}");
    }
}

#[tokio::test]
async fn deleting_every_item_leaves_only_the_current_segment() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    let metas = put_items(&*store, 20).await;
    let before = segment_files(dir.path());
    assert!(before.len() >= 4, "{before:?}");
    delete_all(&*store, &ids(&metas)).await;
    // Only the segment being appended to is left (compaction may have moved
    // survivors to newer segments before their last item was deleted).
    let after = segment_files(dir.path());
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(after.first() >= before.last(), "{before:?} -> {after:?}");
    drop(store);
    let store = open_small(dir.path(), &key).await;
    assert_eq!(store.count().await, 0);
}

#[tokio::test]
async fn the_oldest_segments_go_and_everything_else_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    let metas = put_items(&*store, 20).await;
    let before = segment_files(dir.path());
    let (kept, deleted) = split(&metas, |i| i >= 10);
    delete_all(&*store, &deleted).await;
    // The first two segments held only deleted items (or were compacted first).
    let after = segment_files(dir.path());
    for gone in before.iter().take(2) {
        assert!(!after.contains(gone), "{gone}: {before:?} -> {after:?}");
    }
    let check = async |store: &dyn Store| {
        assert_lists_exactly(store, &kept).await;
        for id in &deleted {
            assert_eq!(store.get(*id).await.unwrap(), None);
        }
    };
    check(&*store).await;
    drop(store);
    let store = open_small(dir.path(), &key).await;
    check(&*store).await;
    assert_eq!(segment_files(dir.path()), after);
}

#[tokio::test]
async fn segments_left_half_deleted_are_reclaimed_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    let metas = put_items(&*store, 20).await;
    let before = segment_files(dir.path());
    // Every other item: each segment keeps some, so none can go yet.
    let (_, even) = split(&metas, |i| i % 2 == 1);
    delete_all(&*store, &even).await;
    assert!(segment_files(dir.path()).is_superset(&before));
    drop(store);
    // Reopened, the store knows from the log alone what each segment still lists.
    let store = open_small(dir.path(), &key).await;
    assert_eq!(store.count().await, 10);
    let (_, odd) = split(&metas, |i| i % 2 == 0);
    delete_all(&*store, &odd).await;
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(store);
    let store = open_small(dir.path(), &key).await;
    assert_eq!(store.count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_deletes_and_reads_never_lose_or_revive_an_item() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    // Kept items, read back over and over while compaction moves them.
    let kept = Arc::new(Mutex::new(Vec::<(ItemMeta, Vec<u8>)>::new()));
    let writing = Arc::new(AtomicBool::new(true));
    let reader = {
        let (store, kept, writing) = (store.clone(), kept.clone(), writing.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while writing.load(Ordering::Relaxed) {
                let recent: Vec<_> = kept.lock().unwrap().iter().rev().take(8).cloned().collect();
                for (meta, data) in recent {
                    assert_eq!(read(&*store, &meta, None).await.unwrap(), data);
                    reads += 1;
                }
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    let writers: Vec<_> = (0..16u8)
        .map(|writer| {
            let (store, kept) = (store.clone(), kept.clone());
            tokio::spawn(async move {
                for i in 0..12u8 {
                    let data = content(3_000, writer.wrapping_mul(31).wrapping_add(i));
                    let meta = put(&*store, dict("10.0.0.2:2"), &data).await;
                    // Delete two items in three, right after their commit.
                    if i % 3 == 2 {
                        kept.lock().unwrap().push((meta, data));
                    } else {
                        assert!(store.delete(meta.id).await.unwrap());
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    writing.store(false, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);
    let kept = kept.lock().unwrap().clone();
    let expected: BTreeSet<ItemId> = kept.iter().map(|(m, _)| m.id).collect();
    let left = segment_files(dir.path());
    let check = async |store: &dyn Store| {
        assert_eq!(listed_ids(store).await, expected);
        for (meta, data) in &kept {
            assert_eq!(&read(store, meta, None).await.unwrap(), data);
        }
    };
    check(&*store).await;
    drop(store);
    let store = open_small(dir.path(), &key).await;
    check(&*store).await;
    // Some segments went: 16 × 12 items of 3 kB fill about 12 of them.
    let last: u32 = left.last().unwrap()[..8].parse().unwrap();
    assert!((left.len() as u32) < last, "{left:?}");
}

#[tokio::test]
async fn mostly_deleted_segments_are_compacted_and_their_survivors_move() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    let metas = put_items(&*store, 24).await;
    let before = segment_files(dir.path());
    // Keep one item in four: three quarters of each segment is deleted.
    let (kept, deleted) = split(&metas, |i| i % 4 == 0);
    delete_all(&*store, &deleted).await;
    // Every segment written before the deletes, but the one still appended
    // to, was compacted and removed.
    let after = segment_files(dir.path());
    assert_all_gone_but_the_last(&before, &after);
    assert_lists_exactly(&*store, &kept).await;
    drop(store);
    let store = open_small(dir.path(), &key).await;
    assert_lists_exactly(&*store, &kept).await;
    assert_eq!(segment_files(dir.path()), after);
}

#[tokio::test]
async fn a_segment_holding_tombstones_of_a_live_segment_stays() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    // Segment 1: a0..a3; segment 2: b0..b3, then the tombstones of a0 and a1.
    let a = put_items(&*store, 4).await;
    let b = put_items(&*store, 4).await;
    delete_all(&*store, &ids(&a[..2])).await;
    // More segments, then segment 2 lists nothing: only its tombstones matter.
    let c = put_items(&*store, 8).await;
    delete_all(&*store, &ids(&b)).await;
    drop(store);
    let store = open_small(dir.path(), &key).await;
    let expected: BTreeSet<ItemId> = a[2..].iter().chain(&c).map(|m| m.id).collect();
    assert_eq!(listed_ids(&*store).await, expected);
}

/// As if the machine crashed after the last delete's compaction copied its
/// records but before the removals that followed reached the disk (removals are
/// made durable one by one, in order, so those are the last ones): the removed
/// segments come back beside the copies. The listing is the same: the later copy
/// wins, tombstones still unlist, and nothing is listed twice.
#[tokio::test]
async fn segments_whose_removal_did_not_reach_the_disk_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    let metas = put_items(&*store, 24).await;
    let (kept, mut deleted) = split(&metas, |i| i % 4 == 1);
    let last = deleted.pop().unwrap();
    delete_all(&*store, &deleted).await;
    let segments = dir.path().join("segments");
    let saved = tempfile::tempdir().unwrap();
    std::fs::create_dir(saved.path().join("segments")).unwrap();
    for name in segment_files(dir.path()) {
        std::fs::copy(
            segments.join(&name),
            saved.path().join("segments").join(&name),
        )
        .unwrap();
    }
    // Its segment is now three quarters deleted: compacted, then removed.
    assert!(store.delete(last).await.unwrap());
    drop(store);
    let left = segment_files(dir.path());
    let mut restored = 0;
    for name in segment_files(saved.path()) {
        if !left.contains(&name) {
            std::fs::copy(
                saved.path().join("segments").join(&name),
                segments.join(&name),
            )
            .unwrap();
            restored += 1;
        }
    }
    assert!(restored >= 1, "the last delete removed no segment");
    let store = open_small(dir.path(), &key).await;
    assert_lists_exactly(&*store, &kept).await;
    assert_eq!(store.count().await, kept.len());
}

/// Segments that became worth compacting without a delete noticing (here: a
/// smaller segment size at the next open, as after a crash) are compacted when
/// the store opens.
#[tokio::test]
async fn segments_worth_compacting_are_compacted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open_small(dir.path(), &key).await;
    let metas = put_items(&*store, 24).await;
    // Half of each segment: not enough to compact with 50 kB segments.
    let (kept, deleted) = split(&metas, |i| i % 2 == 0);
    delete_all(&*store, &deleted).await;
    let before = segment_files(dir.path());
    drop(store);
    let options = LocalOptions {
        segment_size: 30_000,
        ..LocalOptions::default()
    };
    let store = LocalStore::open(dir.path(), keyring(&key), options)
        .await
        .unwrap();
    assert_all_gone_but_the_last(&before, &segment_files(dir.path()));
    assert_lists_exactly(&*store, &kept).await;
}

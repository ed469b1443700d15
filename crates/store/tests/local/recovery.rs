//! Aborted writers, leftovers and torn log tails.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferry_crypto::StorageKey;
use ferry_store::{LocalStore, Store, StoreError};

use crate::frames;
use crate::helpers::*;

fn segment(dir: &Path) -> PathBuf {
    dir.join("segments").join("00000001.log")
}

fn tmp_files(dir: &Path) -> usize {
    fs::read_dir(dir.join("tmp")).unwrap().count()
}

#[tokio::test]
async fn a_dropped_writer_lists_nothing_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let mut small = store.begin(dict("10.0.0.1:1")).await.unwrap();
    small.write(b"{\"half\":").await.unwrap();
    let mut large = store.begin(dict("10.0.0.1:1")).await.unwrap();
    for _ in 0..40 {
        large.write(&content(48_000, 1)).await.unwrap();
    }
    assert_eq!(tmp_files(dir.path()), 1, "a large item streams to tmp/");
    drop(small);
    drop(large);
    assert_eq!(tmp_files(dir.path()), 0);
    assert_eq!(store.count().await, 0);
    drop(store);

    // Leftovers of a crash are removed on open.
    fs::write(
        dir.path()
            .join("tmp")
            .join("01J0000000000000000000000.part"),
        b"partial",
    )
    .unwrap();
    let store = open(dir.path(), &key).await;
    assert_eq!(tmp_files(dir.path()), 0);
    assert_eq!(store.count().await, 0);
    assert!(
        store
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_second_store_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let _store = open(dir.path(), &key).await;
    let second = LocalStore::open(dir.path(), keyring(&key), Default::default()).await;
    assert!(matches!(second, Err(StoreError::Locked(_))));
}

async fn three_items(dir: &Path, key: &StorageKey) -> Vec<ferry_store::ItemMeta> {
    let store = open(dir, key).await;
    let mut metas = Vec::new();
    for i in 0..3u8 {
        metas.push(put(&*store, dict("10.0.0.1:1"), &content(1000, i)).await);
    }
    metas
}

#[tokio::test]
async fn garbage_after_the_last_frame_is_cut_and_earlier_items_are_intact() {
    for garbage in [
        vec![0u8; 4096],
        b"FRYL\x01\0\0\0\xff\xff\0\0garbage".to_vec(),
        content(10, 7),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let key = StorageKey::generate();
        let metas = three_items(dir.path(), &key).await;
        let clean = frames::log_end(&segment(dir.path()));
        OpenOptions::new()
            .write(true)
            .open(segment(dir.path()))
            .unwrap()
            .write_all_at(&garbage, clean)
            .unwrap();

        let store = open(dir.path(), &key).await;
        assert_eq!(frames::log_end(&segment(dir.path())), clean);
        let tail = fs::read(segment(dir.path()))
            .unwrap()
            .split_off(clean as usize);
        assert!(tail.iter().all(|&b| b == 0), "the garbage was not cut");
        assert_eq!(store.count().await, 3);
        for (i, meta) in metas.iter().enumerate() {
            assert_eq!(
                read(&*store, meta, None).await.unwrap(),
                content(1000, i as u8)
            );
        }
        let after = put(&*store, dict("10.0.0.1:1"), b"after").await;
        drop(store);
        let store = open(dir.path(), &key).await;
        assert_eq!(store.count().await, 4);
        assert_eq!(read(&*store, &after, None).await.unwrap(), b"after");
    }
}

#[tokio::test]
async fn a_frame_torn_midway_is_dropped_and_earlier_items_are_intact() {
    for cut in [1u64, 10, 100, 900] {
        let dir = tempfile::tempdir().unwrap();
        let key = StorageKey::generate();
        let metas = three_items(dir.path(), &key).await;
        let file = OpenOptions::new()
            .write(true)
            .open(segment(dir.path()))
            .unwrap();
        file.set_len(frames::log_end(&segment(dir.path())) - cut)
            .unwrap();

        let store = open(dir.path(), &key).await;
        assert_eq!(store.count().await, 2, "cut {cut}");
        assert!(store.get(metas[2].id).await.unwrap().is_none());
        for (i, meta) in metas[..2].iter().enumerate() {
            assert_eq!(
                read(&*store, meta, None).await.unwrap(),
                content(1000, i as u8)
            );
        }
        put(&*store, dict("10.0.0.1:1"), b"after").await;
        drop(store);
        assert_eq!(open(dir.path(), &key).await.count().await, 3);
    }
}

#[tokio::test]
async fn segments_rotate_and_everything_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let mut metas = Vec::new();
    // 70 items of 1 MiB... are large; use 250 KiB inline items to pass 64 MiB.
    for i in 0..300u32 {
        metas.push(put(&*store, dict("10.0.0.1:1"), &content(250_000, i as u8)).await);
    }
    drop(store);
    assert!(dir.path().join("segments").join("00000002.log").exists());
    let store = open(dir.path(), &key).await;
    assert_eq!(store.count().await, 300);
    for (i, meta) in metas.iter().enumerate().step_by(37) {
        assert_eq!(
            read(&*store, meta, None).await.unwrap(),
            content(250_000, i as u8)
        );
    }
}

#[tokio::test]
async fn a_commit_whose_caller_stops_waiting_still_completes_and_lists_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let mut events = store.subscribe();
    for len in [10, 2_000_000] {
        let mut writer = store.begin(dict("10.0.0.1:1")).await.unwrap();
        writer.write(&content(len, 1)).await.unwrap();
        // Polled once, then dropped: the commit has begun and must finish.
        let _ = tokio::time::timeout(std::time::Duration::ZERO, writer.commit()).await;
        let meta = events.recv().await.unwrap();
        assert_eq!(meta.size, len as u64);
        assert_eq!(store.get(meta.id).await.unwrap(), Some(meta));
    }
    drop(store);
    assert_eq!(open(dir.path(), &key).await.count().await, 2);
}

/// A frame is bound to its place: the bytes of a removed segment's frame found in
/// the tail of another segment (stale blocks that some file systems expose in a
/// file's extended tail after a crash) are not taken for a record, so a deleted
/// item does not come back.
#[tokio::test]
async fn a_stale_frame_of_a_removed_segment_is_not_taken_for_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let options = ferry_store::LocalOptions {
        segment_size: 64 << 10,
        ..Default::default()
    };
    let store = LocalStore::open(dir.path(), keyring(&key), options.clone())
        .await
        .unwrap();
    // One item per segment; the first is deleted and its segment removed.
    let mut metas = Vec::new();
    for i in 0..3u8 {
        metas.push(put(&*store, dict("10.0.0.1:1"), &content(40_000, i)).await);
    }
    let first = dir.path().join("segments/00000001.log");
    let stale = fs::read(&first).unwrap();
    assert!(store.delete(metas[0].id).await.unwrap());
    assert!(!first.exists());
    drop(store);

    let last = dir.path().join("segments/00000004.log");
    let last = if last.exists() {
        last
    } else {
        dir.path().join("segments/00000003.log")
    };
    OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap()
        .write_all(&stale)
        .unwrap();
    let store = LocalStore::open(dir.path(), keyring(&key), options)
        .await
        .unwrap();
    assert!(
        store.get(metas[0].id).await.unwrap().is_none(),
        "the deleted item came back"
    );
    assert_eq!(store.count().await, 2);
}

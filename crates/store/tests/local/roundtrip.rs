//! Writing and reading items back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};
use ferry_store::{ItemMeta, LocalOptions, LocalStore, Store, StoreError};

use crate::helpers::*;

#[tokio::test]
async fn small_large_and_empty_items_round_trip_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let mut events = store.subscribe();
    let cases = [
        0usize,
        1,
        100,
        48_000,
        256 << 10,
        (256 << 10) + 1,
        3_000_000,
    ];
    let mut written = Vec::new();
    for (i, len) in cases.into_iter().enumerate() {
        let data = content(len, i as u8);
        let meta = put(&*store, text("10.0.0.1:4000", "a.txt"), &data).await;
        assert_eq!(meta.size, len as u64);
        assert_eq!(meta.sha256, sha256_hex(&data));
        assert!(meta.key_id.starts_with("dk-"), "its own data key");
        assert!(
            written
                .iter()
                .all(|(m, _): &(ItemMeta, _)| m.key_id != meta.key_id)
        );
        assert_eq!(meta.name.as_deref(), Some("a.txt"));
        assert_eq!(events.recv().await.unwrap(), meta);
        assert_eq!(read(&*store, &meta, None).await.unwrap(), data);
        written.push((meta, data));
    }
    assert_eq!(store.count().await, cases.len());
    let large = dir.path().join("items").read_dir().unwrap().count();
    assert_eq!(large, 2, "items above inline_max get their own file");
    drop(store);

    let store = open(dir.path(), &key).await;
    assert_eq!(store.count().await, cases.len());
    for (meta, data) in &written {
        assert_eq!(store.get(meta.id).await.unwrap().as_ref(), Some(meta));
        assert_eq!(&read(&*store, meta, None).await.unwrap(), data);
    }
}

#[tokio::test]
async fn ranges_return_exactly_the_bytes_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &StorageKey::generate()).await;
    let chunk = 64 * 1024u64;
    for len in [100usize, 200_000, 1_000_000] {
        let data = content(len, 9);
        let meta = put(&*store, dict("10.0.0.1:1"), &data).await;
        let size = len as u64;
        let ranges = [
            0..0,
            0..1,
            0..size,
            5..size,
            3..7,
            chunk - 1..chunk + 1,
            chunk..2 * chunk,
            size - 1..size,
            size..size,
            10..size + 1000,
        ];
        for range in ranges {
            if range.end > size && range.start >= size {
                continue;
            }
            let got = read(&*store, &meta, Some(range.clone())).await.unwrap();
            let end = range.end.min(size) as usize;
            assert_eq!(got, data[range.start as usize..end], "{range:?} of {size}");
        }
        assert!(matches!(
            read(&*store, &meta, Some(size + 1..size + 2)).await,
            Err(StoreError::InvalidRange { .. })
        ));
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 7..3;
        assert!(matches!(
            read(&*store, &meta, Some(backwards)).await,
            Err(StoreError::InvalidRange { .. })
        ));
    }
}

#[tokio::test]
async fn writing_past_the_maximum_size_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = LocalOptions {
        max_item_size: Some(100_000),
        ..LocalOptions::default()
    };
    let store = LocalStore::open(dir.path(), keyring(&StorageKey::generate()), options)
        .await
        .unwrap();
    let mut writer = store.begin(dict("10.0.0.1:1")).await.unwrap();
    writer.write(&content(60_000, 1)).await.unwrap();
    let err = writer.write(&content(60_000, 1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { limit: 100_000 }),
        "{err}"
    );
    assert!(writer.commit().await.is_err());
    assert_eq!(store.count().await, 0);

    let exactly = put(&*store, dict("10.0.0.1:1"), &content(100_000, 2)).await;
    assert_eq!(exactly.size, 100_000);
}

/// The bytes of every file under `dir/sub`, without the zeros that end them (a
/// log segment's prepared space).
fn contents(dir: &Path, sub: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.truncate(bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1));
            (path, bytes)
        })
        .collect()
}

#[tokio::test]
async fn rotating_the_storage_key_rewraps_the_data_keys_and_leaves_the_data_alone() {
    let dir = tempfile::tempdir().unwrap();
    let old = StorageKey::generate();
    let store = open(dir.path(), &old).await;
    let small = put(&*store, dict("10.0.0.1:1"), b"{\"a\":1}").await;
    let large = put(&*store, dict("10.0.0.1:1"), &content(1_000_000, 3)).await;
    let gone = put(&*store, dict("10.0.0.1:1"), b"{\"b\":2}").await;
    assert!(store.delete(gone.id).await.unwrap());
    drop(store);
    let data = [
        contents(dir.path(), "segments"),
        contents(dir.path(), "items"),
    ];
    let keys = contents(dir.path(), "keys");

    // Opened with the new key as current and the old one: the data keys are
    // rewrapped; the item data is not touched.
    let new = StorageKey::generate();
    let store = LocalStore::open(
        dir.path(),
        Keyring::new(new.clone(), vec![old.clone()]),
        LocalOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(read(&*store, &small, None).await.unwrap(), b"{\"a\":1}");
    drop(store);
    assert_eq!(
        [
            contents(dir.path(), "segments"),
            contents(dir.path(), "items")
        ],
        data,
        "rotation rewrote item data"
    );
    let rewrapped = contents(dir.path(), "keys");
    assert_eq!(rewrapped.len(), keys.len());
    for (path, bytes) in &keys {
        let now = &rewrapped[path];
        assert_ne!(now, bytes, "{} was not rewrapped", path.display());
        assert!(
            std::str::from_utf8(&now[128..144]) == Ok(new.id()),
            "the first data key is wrapped by the new storage key"
        );
    }

    // The old key is no longer needed: every item reads back without it, and the
    // deleted one stays deleted.
    let store = open(dir.path(), &new).await;
    assert_eq!(read(&*store, &small, None).await.unwrap(), b"{\"a\":1}");
    assert_eq!(
        read(&*store, &large, None).await.unwrap(),
        content(1_000_000, 3)
    );
    assert!(store.get(gone.id).await.unwrap().is_none());
    let fresh = put(&*store, dict("10.0.0.1:1"), b"{}").await;
    assert_eq!(read(&*store, &fresh, None).await.unwrap(), b"{}");
    drop(store);

    // Given only a key that never wrapped them, the store refuses to open,
    // naming the key it needs; told to start anyway, it lists nothing it
    // cannot read.
    let other = StorageKey::generate();
    match LocalStore::open(dir.path(), keyring(&other), LocalOptions::default()).await {
        Err(StoreError::MissingKeys { key_ids, records }) => {
            assert_eq!((key_ids, records), (vec![new.id().to_owned()], 3));
        }
        other => panic!("expected MissingKeys, got {other:?}"),
    }
    let options = LocalOptions {
        allow_missing_keys: true,
        ..LocalOptions::default()
    };
    let store = LocalStore::open(dir.path(), keyring(&other), options)
        .await
        .unwrap();
    assert_eq!(store.count().await, 0);
    let newest = put(&*store, dict("10.0.0.1:1"), b"[]").await;
    assert_eq!(read(&*store, &newest, None).await.unwrap(), b"[]");
}

#[tokio::test]
async fn sixty_four_concurrent_writers_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store: Arc<dyn Store> = store.clone();
            tokio::spawn(async move {
                let mut metas = Vec::new();
                for j in 0..20 {
                    let len = if i % 16 == 0 && j == 0 {
                        700_000
                    } else {
                        200 + i * 10 + j
                    };
                    let data = content(len, i as u8);
                    let meta = put(&*store, dict(&format!("10.0.{i}.1:9")), &data).await;
                    metas.push((meta, data));
                }
                metas
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert_eq!(store.count().await, 64 * 20);
    for (meta, data) in &all {
        assert_eq!(&read(&*store, meta, None).await.unwrap(), data);
    }
    drop(store);
    let store = open(dir.path(), &key).await;
    assert_eq!(store.count().await, 64 * 20);
}

#[tokio::test]
async fn deleted_items_are_gone_now_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let store = open(dir.path(), &key).await;
    let small = put(&*store, dict("10.0.0.1:1"), b"{}").await;
    let large = put(&*store, dict("10.0.0.1:1"), &content(500_000, 1)).await;
    let kept = put(&*store, dict("10.0.0.1:1"), b"[]").await;
    assert!(store.delete(small.id).await.unwrap());
    assert!(store.delete(large.id).await.unwrap());
    assert!(!store.delete(large.id).await.unwrap());
    assert!(store.get(small.id).await.unwrap().is_none());
    assert!(store.open(large.id, None).await.unwrap().is_none());
    assert_eq!(dir.path().join("items").read_dir().unwrap().count(), 0);
    drop(store);
    let store = open(dir.path(), &key).await;
    assert_eq!(store.count().await, 1);
    assert!(store.get(kept.id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_large_item_beyond_the_memory_for_large_items_waits_for_one_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::generate();
    let options = LocalOptions {
        large_item_memory: ferry_store::LARGE_ITEM_MEMORY,
        ..LocalOptions::default()
    };
    let store = LocalStore::open(dir.path(), keyring(&key), options)
        .await
        .unwrap();
    let first_data = content(400_000, 1);
    let second_data = content(300_000, 2);
    let mut first = store.begin(text("10.0.0.1:1", "a.txt")).await.unwrap();
    first.write(&first_data).await.unwrap();
    let mut second = store.begin(text("10.0.0.1:2", "b.txt")).await.unwrap();
    // Past inline_max the second item needs memory the first one holds.
    let mut blocked = Box::pin(second.write(&second_data));
    for _ in 0..100 {
        tokio::task::yield_now().await;
        assert!(
            futures::poll!(blocked.as_mut()).is_pending(),
            "a second large item started while the first holds all the memory"
        );
    }
    let a = first.commit().await.unwrap();
    blocked.await.unwrap();
    let b = second.commit().await.unwrap();
    assert_eq!(read(&*store, &a, None).await.unwrap(), first_data);
    assert_eq!(read(&*store, &b, None).await.unwrap(), second_data);
}

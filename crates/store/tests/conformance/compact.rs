//! Compaction of the S3 store's commit log: the space of deleted items comes
//! back, every server keeps reading every listed item, and a server that
//! missed the compaction rebuilds its view instead of listing what is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_store::{ItemId, ListQuery, S3Options, S3Store, Store};
use futures::TryStreamExt;

use crate::backends::S3;
use crate::suite::{content, dict, put, read, text};

/// Compacts when told, and removes what it copied at once.
fn told() -> S3Options {
    S3Options {
        compact_interval: Duration::from_secs(3600),
        compact_grace: Duration::ZERO,
        ..S3Options::default()
    }
}

/// Never reads the log unless asked.
fn asleep() -> S3Options {
    S3Options {
        poll_interval: Duration::from_secs(3600),
        ..told()
    }
}

async fn log_bytes(s3: &S3) -> u64 {
    let log = object_store::path::Path::from("store/log");
    let objects: Vec<_> = s3.bucket().list(Some(&log)).try_collect().await.unwrap();
    objects.iter().map(|o| o.size).sum()
}

/// Every listed item's id, whether held, and its content.
async fn contents(store: &dyn Store) -> BTreeMap<ItemId, (bool, Vec<u8>)> {
    let page = store.list(&ListQuery::default()).await.unwrap();
    let mut all = BTreeMap::new();
    for meta in page.items {
        let data = read(store, meta.id, None).await.unwrap();
        all.insert(meta.id, (meta.held, data));
    }
    all
}

/// Stores 40 small items (one log object each) and a large one, holds one
/// small item and deletes 30 others; returns what stays listed.
async fn fill(store: &S3Store) -> BTreeMap<ItemId, (bool, Vec<u8>)> {
    let mut kept = BTreeMap::new();
    for n in 0..40u8 {
        let data = content(40_000, n);
        let meta = put(store, dict("10.0.0.1:1"), &data).await;
        if n % 4 == 0 {
            kept.insert(meta.id, (n == 8, data));
        } else {
            assert!(store.delete(meta.id).await.unwrap());
        }
    }
    let held = *kept.keys().nth(2).unwrap();
    store.set_hold(held, true).await.unwrap();
    let large = content(6 << 20, 99);
    let meta = put(store, text("10.0.0.1:1", "l.txt"), &large).await;
    kept.insert(meta.id, (false, large));
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_gives_back_the_space_of_deleted_items_on_every_server() {
    let s3 = S3::new();
    let a = s3.open_s3(told()).await;
    let kept = fill(&a).await;
    let b = s3.open_s3(asleep()).await;
    assert_eq!(contents(&*b).await, kept);
    let before = log_bytes(&s3).await;

    // Not worth it by itself? It is: three quarters of the log is deleted items.
    let done = a.compact(false).await.unwrap();
    assert_eq!(done.copied, kept.len(), "{done:?}");
    let done = a.compact(false).await.unwrap();
    assert_eq!(done.removed_objects, 72, "{done:?}");
    let after = log_bytes(&s3).await;
    assert!(after * 3 < before, "log of {before} bytes is now {after}");

    assert_eq!(contents(&*a).await, kept);
    // b still has every item where it was before the copy: it finds them moved.
    assert_eq!(contents(&*b).await, kept);
    let fresh = s3.open_s3(told()).await;
    assert_eq!(contents(&*fresh).await, kept);
    let held = kept.iter().find(|(_, (held, _))| *held).unwrap().0;
    assert!(
        fresh.delete(*held).await.is_err(),
        "the hold moved with its item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_missed_a_compaction_rebuilds_its_view() {
    let s3 = S3::new();
    let a = s3.open_s3(told()).await;
    let early = put(&*a, dict("10.0.0.1:1"), b"{\"early\": 1}").await;
    let b = s3.open_s3(asleep()).await;
    assert_eq!(b.count().await, 1);
    let kept = fill(&a).await;
    assert!(a.delete(early.id).await.unwrap());
    a.compact(true).await.unwrap();
    a.compact(false).await.unwrap();

    b.refresh().await.unwrap();
    assert_eq!(
        contents(&*b).await,
        kept,
        "b lists nothing deleted meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_compacting_at_once_while_another_writes_lose_nothing() {
    let s3 = S3::new();
    let (a, b, writer) = (
        s3.open_s3(told()).await,
        s3.open_s3(told()).await,
        s3.open_s3(told()).await,
    );
    let mut kept = fill(&writer).await;
    let writes = async {
        let mut added = BTreeMap::new();
        for n in 0..20u8 {
            let data = content(10_000, 100 + n);
            let meta = put(&*writer, dict("10.0.0.2:1"), &data).await;
            added.insert(meta.id, (false, data));
            if n % 5 == 0 {
                let gone = *kept.keys().find(|id| !kept[id].0).unwrap();
                assert!(writer.delete(gone).await.unwrap());
                kept.remove(&gone);
            }
        }
        added
    };
    let (added, one, two) = tokio::join!(writes, a.compact(true), b.compact(true));
    one.unwrap();
    two.unwrap();
    kept.extend(added);
    a.compact(false).await.unwrap();
    b.compact(false).await.unwrap();

    let fresh = s3.open_s3(told()).await;
    assert_eq!(contents(&*fresh).await, kept);
    writer.refresh().await.unwrap();
    assert_eq!(contents(&*writer).await, kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_server_cannot_read_is_never_compacted_away() {
    use ferry_crypto::{Keyring, StorageKey};
    let s3 = S3::new();
    let writer = s3.open_s3(told()).await;
    let unread = put(&*writer, dict("10.0.0.1:1"), b"{\"old key\": 1}").await;
    let newer = StorageKey::generate();
    let allowed = S3Options {
        allow_missing_keys: true,
        ..told()
    };
    let without = s3
        .open_keyed(Keyring::new(newer.clone(), vec![]), allowed)
        .await
        .unwrap();
    for n in 0..3u8 {
        let meta = put(&*without, dict("10.0.0.1:1"), &content(1000, n)).await;
        without.delete(meta.id).await.unwrap();
    }
    let done = without.compact(true).await.unwrap();
    let done_again = without.compact(true).await.unwrap();
    assert_eq!(
        (done.copied, done_again.removed_objects),
        (0, 0),
        "{done:?}"
    );

    let with = Keyring::new(newer, vec![s3.key().clone()]);
    let reader = s3.open_keyed(with, told()).await.unwrap();
    assert_eq!(
        read(&*reader, unread.id, None).await.unwrap(),
        b"{\"old key\": 1}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_nothing_lists_are_swept_and_listed_ones_kept() {
    use object_store::{ObjectStoreExt, PutPayload};
    let s3 = S3::new();
    let store = s3
        .open_s3(S3Options {
            orphan_age: Duration::ZERO,
            ..told()
        })
        .await;
    let large = content(1 << 20, 3);
    let listed = put(&*store, text("10.0.0.1:1", "kept.txt"), &large).await;
    let orphan = object_store::path::Path::from(format!("store/items/{}.rec", ItemId::new()));
    let bucket = s3.bucket();
    bucket
        .put(&orphan, PutPayload::from_static(b"an upload never listed"))
        .await
        .unwrap();

    let done = store.compact(false).await.unwrap();
    assert_eq!(done.swept_objects, 1, "{done:?}");
    assert!(bucket.head(&orphan).await.is_err());
    assert_eq!(read(&*store, listed.id, None).await.unwrap(), large);
}

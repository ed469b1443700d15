//! What only a store shared by several servers has: every server sees every
//! other's items and deletes, and none overwrites another's objects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_crypto::{Keyring, StorageKey};
use ferry_store::{ListQuery, S3Options, Store, StoreError};

use crate::backends::S3;
use crate::suite::{content, dict, put, read, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_one_bucket_see_each_others_items_and_deletes() {
    let s3 = S3::new();
    let a = s3.open_s3(S3Options::default()).await;
    let b = s3.open_s3(S3Options::default()).await;
    let small = put(&*a, dict("10.0.0.1:1"), b"{\"from\": \"a\"}").await;
    let large_data = content(6 << 20, 5);
    let large = put(&*a, text("10.0.0.1:1", "l.txt"), &large_data).await;
    b.refresh().await.unwrap();
    assert_eq!(b.get(small.id).await.unwrap(), Some(small.clone()));
    assert_eq!(read(&*b, large.id, None).await.unwrap(), large_data);

    assert!(b.delete(large.id).await.unwrap());
    a.refresh().await.unwrap();
    assert!(a.get(large.id).await.unwrap().is_none());
    assert!(a.open(large.id, None).await.unwrap().is_none());
    assert_eq!(a.count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_is_listed_on_another_server_within_its_poll() {
    let s3 = S3::new();
    let poll = Duration::from_millis(200);
    let options = S3Options {
        poll_interval: poll,
        ..S3Options::default()
    };
    let a = s3.open_s3(options.clone()).await;
    let b = s3.open_s3(options).await;
    let mut events = b.subscribe();
    let committed = Instant::now();
    let meta = put(&*a, dict("10.0.0.1:1"), b"{}").await;
    let seen = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("not listed on the other server within 5 s")
        .unwrap();
    assert_eq!(seen.id, meta.id);
    let lag = committed.elapsed();
    assert!(lag < Duration::from_secs(2), "{lag:?}");
}

/// Two servers commit at once, many times: each log object is created once,
/// so no entry of either is lost, and every server lists all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_servers_never_overwrite_each_others_log_objects() {
    let s3 = S3::new();
    let servers = [
        s3.open_s3(S3Options::default()).await,
        s3.open_s3(S3Options::default()).await,
    ];
    let tasks: Vec<_> = (0..16u8)
        .map(|t| {
            let store = servers[usize::from(t % 2)].clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..6u8 {
                    ids.push(
                        put(&*store, dict("10.0.0.1:1"), &content(40, t ^ i))
                            .await
                            .id,
                    );
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    let third = s3.open_s3(S3Options::default()).await;
    for store in servers.iter().chain([&third]) {
        store.refresh().await.unwrap();
        assert_eq!(store.count().await, ids.len());
        for id in &ids {
            assert!(store.get(*id).await.unwrap().is_some());
        }
    }
    let listed: Vec<_> = third.list(&ListQuery::default()).await.unwrap().items;
    assert_eq!(listed.len(), 96);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_storage_key_refuses_to_open() {
    let s3 = S3::new();
    let store = s3.open_s3(S3Options::default()).await;
    put(&*store, dict("10.0.0.1:1"), b"{}").await;
    let other = Keyring::new(StorageKey::generate(), vec![]);
    let location = "s3://ferry-conformance/store".parse().unwrap();
    let err = ferry_store::S3Store::open_on(s3.bucket(), &location, other, S3Options::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, StoreError::MissingKeys { records: 1, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_large_object_fails_its_integrity_check() {
    use object_store::{ObjectStoreExt, PutPayload};
    let s3 = S3::new();
    let store: Arc<dyn Store> = s3.open_s3(S3Options::default()).await;
    let data = content(1 << 20, 6);
    let meta = put(&*store, text("10.0.0.1:1", "t.txt"), &data).await;
    let objects = s3.bucket();
    let path = object_store::path::Path::from(format!("store/items/{}.rec", meta.id));
    let mut bytes = objects
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[200_000] ^= 1;
    objects.put(&path, PutPayload::from(bytes)).await.unwrap();
    let err = read(&*store, meta.id, None).await.err().unwrap();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
}

/// A server asked for an id it does not list reads the commit log first: an
/// item committed elsewhere a moment ago is found without waiting for a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_from_another_server_is_found_by_id_at_once() {
    let s3 = S3::new();
    let a = s3.open_s3(S3Options::default()).await;
    let never_polls = S3Options {
        poll_interval: Duration::from_secs(3600),
        ..S3Options::default()
    };
    let b = s3.open_s3(never_polls).await;
    let meta = put(&*a, dict("10.0.0.1:1"), b"{\"now\": 1}").await;
    assert_eq!(b.get(meta.id).await.unwrap(), Some(meta.clone()));
    assert_eq!(read(&*b, meta.id, None).await.unwrap(), b"{\"now\": 1}");
    assert!(b.delete(meta.id).await.unwrap());
}

/// Large items' uploads hold their parts in memory: beyond
/// `upload_memory`, the next one waits for one to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_their_memory_wait_for_one_to_end() {
    let s3 = S3::new();
    let one_at_a_time = S3Options {
        upload_memory: 1,
        ..S3Options::default()
    };
    let store = s3.open_s3(one_at_a_time).await;
    let (first_data, second_data) = (content(1 << 20, 1), content(1 << 20, 2));
    let mut first = store.begin(text("10.0.0.1:1", "1.txt")).await.unwrap();
    first.write(&first_data).await.unwrap();
    let mut second = store.begin(text("10.0.0.1:2", "2.txt")).await.unwrap();
    {
        let mut waiting = std::pin::pin!(second.write(&second_data));
        // Without the bound it would start its upload and buffer its 1 MiB at
        // once; with it, it waits as long as the first upload runs.
        let waited = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
        assert!(
            waited.is_err(),
            "the second upload started beside the first"
        );
        let first = first.commit().await.unwrap();
        waiting.await.unwrap();
        assert_eq!(read(&*store, first.id, None).await.unwrap(), first_data);
    }
    let second = second.commit().await.unwrap();
    assert_eq!(read(&*store, second.id, None).await.unwrap(), second_data);
}

/// Each server keeps its own log in the bucket: a `stored` leaf for each item
/// it stores, a leaf for each delete and hold it makes; receipts whose
/// inclusion proofs verify, from a checkpoint kept in the bucket across a
/// reopen; and a leaf changed in the bucket fails the notary's check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_logs_what_it_does_in_its_own_log() {
    use ferry_store::{Notary, stored_entry};
    use ferry_tlog::{Event, Signer};
    use object_store::ObjectStoreExt;

    let s3 = S3::new();
    let logged = |name: &str| S3Options {
        ledger: Some(name.to_owned()),
        ..S3Options::default()
    };
    let a = s3.open_s3(logged("a")).await;
    let b = s3.open_s3(logged("b")).await;
    let signer = Signer::generate("test.example/a").unwrap();
    let notary = Notary::start(signer.clone(), a.ledger().unwrap())
        .await
        .unwrap();
    let mut stored = Vec::new();
    for n in 0..3u8 {
        stored.push(put(&*a, dict("10.0.0.1:1"), &content(40, n)).await);
    }
    let large = put(&*a, text("10.0.0.1:1", "l.txt"), &content(6 << 20, 9)).await;
    let on_b = put(&*b, dict("10.0.0.2:1"), b"{\"from\": \"b\"}").await;
    assert_eq!(on_b.log_index, Some(0), "b's first leaf, in b's own log");
    for (n, meta) in stored.iter().chain([&large]).enumerate() {
        assert_eq!(meta.log_index, Some(n as u64));
        let receipt = notary.receipt(meta).await.expect("a receipt");
        receipt.verify(&signer.verifier()).unwrap();
        assert_eq!(
            a.get(meta.id).await.unwrap().unwrap().log_index,
            meta.log_index
        );
    }
    a.set_hold(stored[0].id, true).await.unwrap();
    a.set_hold(stored[0].id, false).await.unwrap();
    assert!(a.delete(stored[1].id).await.unwrap());
    a.refresh().await.unwrap();
    assert!(
        a.delete(on_b.id).await.unwrap(),
        "a deletes b's item: a's log says so"
    );
    let ledger = a.ledger().unwrap();
    let events: Vec<Event> = ledger
        .leaves(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|(_, entry)| entry.event())
        .collect();
    use Event::{Deleted, Hold, Release, Stored};
    assert_eq!(
        events,
        [
            Stored, Stored, Stored, Stored, Hold, Release, Deleted, Deleted
        ]
    );
    assert_eq!(
        ledger.leaves(3, 1).await.unwrap()[0].1,
        stored_entry(&large)
    );
    assert_eq!(b.ledger().unwrap().size(), 1);
    let published = notary.publish().await.unwrap().unwrap();
    assert_eq!(published.size, 8);
    drop((notary, ledger, a));

    // Reopened: the same leaves, and the checkpoint from the bucket agrees.
    let a = s3.open_s3(logged("a")).await;
    assert_eq!(
        a.get(stored[2].id).await.unwrap().unwrap().log_index,
        Some(2)
    );
    let notary = Notary::start(signer.clone(), a.ledger().unwrap())
        .await
        .unwrap();
    assert!(notary.health().ok, "{:?}", notary.health().problems);
    let receipt = notary.receipt(&stored[2]).await.unwrap();
    receipt.verify(&signer.verifier()).unwrap();
    drop((notary, a));

    // A leaf changed in the bucket: the reopened log no longer matches the
    // checkpoint it signed.
    let bucket = s3.bucket();
    let path = object_store::path::Path::from("store/ledger/a/00000000000000000001");
    let mut bytes = bucket
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    bucket.put(&path, bytes.into()).await.unwrap();
    let a = s3.open_s3(logged("a")).await;
    let notary = Notary::start(signer, a.ledger().unwrap()).await.unwrap();
    assert!(!notary.health().ok, "a changed leaf is caught");
}

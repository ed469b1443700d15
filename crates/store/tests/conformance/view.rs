//! An S3 server's view of the bucket, kept on its disk: a restart reads only
//! the commit log written since, and a view that does not match the bucket or
//! the keys is rebuilt, never trusted.

use std::sync::Arc;

use ferry_crypto::{Keyring, StorageKey};
use ferry_store::{ListQuery, S3Options, Store, StoreError};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::backends::S3;
use crate::suite::{dict, put};

fn kept_in(dir: &tempfile::TempDir) -> S3Options {
    S3Options {
        view_dir: Some(dir.path().to_owned()),
        ..S3Options::default()
    }
}

async fn listed(store: &dyn Store) -> usize {
    store.list(&ListQuery::default()).await.unwrap().items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_view_reads_only_the_log_written_since() {
    let s3 = S3::new();
    let dir = tempfile::tempdir().unwrap();
    let store = s3.open_s3(kept_in(&dir)).await;
    for n in 0..3 {
        put(
            &*store,
            dict("10.0.0.1:1"),
            format!("{{\"n\": {n}}}").as_bytes(),
        )
        .await;
    }
    drop(store);
    // The first log object damaged after the view took it: a view rebuilt
    // from the whole log would leave its item out.
    let first = Path::from("store/log/00000000000000000001");
    s3.bucket()
        .put(&first, PutPayload::from_static(b"damaged"))
        .await
        .unwrap();

    let store = s3.open_s3(kept_in(&dir)).await;
    assert_eq!(listed(&*store).await, 3, "the view resumed where it was");
    put(&*store, dict("10.0.0.1:1"), b"{\"n\": 3}").await;
    assert_eq!(listed(&*store).await, 4);

    let rebuilt = s3.open_s3(S3Options::default()).await;
    assert_eq!(
        listed(&*rebuilt).await,
        3,
        "the damaged object's item is left out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_of_an_emptied_bucket_is_rebuilt() {
    let s3 = S3::new();
    let dir = tempfile::tempdir().unwrap();
    let store = s3.open_s3(kept_in(&dir)).await;
    put(&*store, dict("10.0.0.1:1"), b"{}").await;
    put(&*store, dict("10.0.0.1:1"), b"{}").await;
    drop(store);
    let bucket = s3.bucket();
    let objects: Vec<_> = bucket.list(None).try_collect().await.unwrap();
    for object in objects {
        bucket.delete(&object.location).await.unwrap();
    }

    let store = s3.open_s3(kept_in(&dir)).await;
    assert_eq!(listed(&*store).await, 0);
    let meta = put(&*store, dict("10.0.0.1:1"), b"{}").await;
    assert_eq!(listed(&*store).await, 1);
    let other = s3.open_s3(S3Options::default()).await;
    assert_eq!(other.get(meta.id).await.unwrap(), Some(meta));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_left_out_for_a_missing_key_come_back_when_it_is_given() {
    let s3 = S3::new();
    let writer = s3.open_s3(S3Options::default()).await;
    put(&*writer, dict("10.0.0.1:1"), b"{}").await;
    let dir = tempfile::tempdir().unwrap();
    let newer = StorageKey::generate();
    let without = Keyring::new(newer.clone(), vec![]);

    let allowed = S3Options {
        allow_missing_keys: true,
        ..kept_in(&dir)
    };
    let store = s3.open_keyed(without.clone(), allowed).await.unwrap();
    assert_eq!(listed(&*store).await, 0);
    drop(store);

    let refused = s3.open_keyed(without, kept_in(&dir)).await.err().unwrap();
    assert!(
        matches!(refused, StoreError::MissingKeys { records: 1, .. }),
        "{refused}"
    );

    let with = Keyring::new(newer, vec![s3.key().clone()]);
    let store: Arc<dyn Store> = s3.open_keyed(with, kept_in(&dir)).await.unwrap();
    assert_eq!(listed(&*store).await, 1);
}

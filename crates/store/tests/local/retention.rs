//! The retention sweep over a real store: expired items go, held ones stay and
//! are counted, the others are untouched, page after page.

use std::time::Duration;

use ferry_crypto::StorageKey;
use ferry_store::{ListQuery, Retention, Store, Swept, sweep_expired};
use time::OffsetDateTime;

use crate::helpers::{content, dict, open, put, text};

#[tokio::test]
async fn the_sweep_deletes_expired_items_that_are_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &StorageKey::generate()).await;
    // More than a page of the sweep's listing.
    let mut dicts = Vec::new();
    for i in 0..300 {
        dicts.push(put(&*store, dict("10.0.0.1:1"), &content(10, i as u8)).await);
    }
    let texts = [
        put(&*store, text("10.0.0.2:1", "a.txt"), &content(10, 1)).await,
        put(&*store, text("10.0.0.2:1", "b.txt"), &content(10, 2)).await,
    ];
    for meta in &dicts[..3] {
        store.set_hold(meta.id, true).await.unwrap();
    }
    let retention: Retention = "dict.json=1h,text=7d".parse().unwrap();
    let now = OffsetDateTime::now_utc();

    // Nothing has expired yet.
    assert_eq!(
        sweep_expired(&*store, &retention, now).await.unwrap(),
        Swept::default()
    );
    assert_eq!(store.count().await, 302);

    // Two hours on: the dictionaries have expired, the texts not.
    let later = now + Duration::from_secs(2 * 3600);
    let swept = sweep_expired(&*store, &retention, later).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            expired: 297,
            held: 3
        }
    );
    let left = store.list(&ListQuery::default()).await.unwrap().items;
    let mut left: Vec<_> = left.into_iter().map(|m| m.id).collect();
    left.sort();
    let mut expected: Vec<_> = dicts[..3].iter().chain(&texts).map(|m| m.id).collect();
    expected.sort();
    assert_eq!(left, expected);

    // Released, a held item goes on the next sweep; no rules, nothing goes.
    store.set_hold(dicts[0].id, false).await.unwrap();
    assert_eq!(
        sweep_expired(&*store, &Retention::default(), later)
            .await
            .unwrap(),
        Swept::default()
    );
    let swept = sweep_expired(&*store, &retention, later).await.unwrap();
    assert_eq!(
        swept,
        Swept {
            expired: 1,
            held: 2
        }
    );
    assert!(store.get(dicts[0].id).await.unwrap().is_none());
    assert_eq!(store.count().await, 4);
}

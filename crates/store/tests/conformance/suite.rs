//! The tests every store passes.

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{DataType, Serialization};
use ferry_store::{ItemMeta, ListQuery, Store, StoreError};
use futures::TryStreamExt;

use crate::backends::Backend;
pub use crate::helpers::{content, dict, put, sha256_hex, text};

/// Reads an item (or a range of it) whole.
pub async fn read(
    store: &dyn Store,
    id: ferry_store::ItemId,
    range: Option<std::ops::Range<u64>>,
) -> Result<Vec<u8>, StoreError> {
    let (_, stream) = store.open(id, range).await?.expect("item exists");
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

async fn check_ranges(store: &dyn Store, meta: &ItemMeta, data: &[u8]) {
    let len = data.len() as u64;
    let chunk = 64 * 1024;
    let ranges = [
        0..len,
        0..1,
        len - 1..len,
        chunk - 3..chunk + 5,
        len / 3..len / 2,
        7..len + 1000,
    ];
    for range in ranges {
        let end = range.end.min(len);
        let got = read(store, meta.id, Some(range.clone())).await.unwrap();
        assert_eq!(
            got,
            &data[range.start as usize..end as usize],
            "range {range:?}"
        );
    }
}

pub async fn small_items_read_back_whole_and_in_ranges(backend: &dyn Backend) {
    let store = backend.open().await;
    let data = content(200_000, 1);
    let meta = put(&*store, text("10.0.0.1:5000", "a.txt"), &data).await;
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.sha256, sha256_hex(&data));
    assert_eq!(meta.name.as_deref(), Some("a.txt"));
    assert_eq!(store.get(meta.id).await.unwrap(), Some(meta.clone()));
    assert_eq!(read(&*store, meta.id, None).await.unwrap(), data);
    check_ranges(&*store, &meta, &data).await;
}

pub async fn large_items_stream_back_whole_and_in_ranges(backend: &dyn Backend) {
    let store = backend.open().await;
    // Past the inline size, and over two upload parts on the S3 store.
    let data = content(11 * 1024 * 1024 + 123, 2);
    let meta = put(&*store, text("10.0.0.1:5000", "big.txt"), &data).await;
    assert_eq!(meta.sha256, sha256_hex(&data));
    assert_eq!(read(&*store, meta.id, None).await.unwrap(), data);
    check_ranges(&*store, &meta, &data).await;
    drop(store);
    let store = backend.open().await;
    assert_eq!(
        read(&*store, meta.id, Some(5_000_000..5_300_000))
            .await
            .unwrap(),
        &data[5_000_000..5_300_000]
    );
}

pub async fn empty_items_read_back(backend: &dyn Backend) {
    let store = backend.open().await;
    let meta = put(&*store, dict("10.0.0.1:1"), b"").await;
    assert_eq!(meta.size, 0);
    assert_eq!(read(&*store, meta.id, None).await.unwrap(), b"");
}

pub async fn a_range_past_the_end_is_refused(backend: &dyn Backend) {
    let store = backend.open().await;
    let meta = put(&*store, dict("10.0.0.1:1"), b"{\"a\": 1}").await;
    let err = store.open(meta.id, Some(9..20)).await.err().unwrap();
    assert!(
        matches!(err, StoreError::InvalidRange { size: 8, .. }),
        "{err}"
    );
    assert_eq!(read(&*store, meta.id, Some(8..20)).await.unwrap(), b"");
    let unknown = ferry_store::ItemId::new();
    assert!(store.open(unknown, None).await.unwrap().is_none());
    assert!(store.get(unknown).await.unwrap().is_none());
}

pub async fn listing_is_newest_first_filtered_and_paged(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut metas = Vec::new();
    for i in 0..12u8 {
        let item = if i % 3 == 0 {
            let name = if i == 3 { "Report-March.TXT" } else { "t.txt" };
            text(&format!("10.0.0.{}:7000", i % 2 + 1), name)
        } else {
            dict(&format!("10.0.0.{}:7000", i % 2 + 1))
        };
        metas.push(put(&*store, item, &content(100 + usize::from(i), i)).await);
    }
    let all = store.list(&ListQuery::default()).await.unwrap();
    let newest_first: Vec<_> = metas.iter().rev().cloned().collect();
    assert_eq!(all.items, newest_first);
    assert_eq!(all.next, None);

    let texts = ListQuery {
        data_type: Some(DataType::Text),
        ..ListQuery::default()
    };
    let listed = store.list(&texts).await.unwrap().items;
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|m| m.data_type == DataType::Text));

    let named = ListQuery {
        name: Some("march".into()),
        ..ListQuery::default()
    };
    let listed = store.list(&named).await.unwrap().items;
    assert_eq!(
        listed,
        vec![metas[3].clone()],
        "a name is matched in part, ignoring case"
    );

    let from_one = ListQuery {
        source: Some("10.0.0.1".into()),
        serialization: Some(Serialization::Json),
        ..ListQuery::default()
    };
    let listed = store.list(&from_one).await.unwrap().items;
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|m| m.peer.starts_with("10.0.0.1:")));

    let mut paged = Vec::new();
    let mut query = ListQuery {
        limit: 5,
        ..ListQuery::default()
    };
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.items.len() <= 5);
        paged.extend(page.items);
        match page.next {
            Some(next) => query.before = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);

    let since = ListQuery {
        since: Some(metas[6].received_at),
        ..ListQuery::default()
    };
    let listed = store.list(&since).await.unwrap().items;
    assert!(listed.iter().all(|m| m.received_at >= metas[6].received_at));
    assert!(listed.iter().any(|m| m.id == metas[11].id));
    assert_eq!(store.count().await, 12);
}

pub async fn deleted_items_are_gone_and_stay_gone(backend: &dyn Backend) {
    let store = backend.open().await;
    let small = put(&*store, dict("10.0.0.1:1"), b"{\"k\": 2}").await;
    let large = put(&*store, text("10.0.0.1:1", "l.txt"), &content(600_000, 3)).await;
    let kept = put(&*store, dict("10.0.0.1:1"), b"{\"k\": 3}").await;
    for meta in [&small, &large] {
        assert!(store.delete(meta.id).await.unwrap());
        assert!(store.get(meta.id).await.unwrap().is_none());
        assert!(store.open(meta.id, None).await.unwrap().is_none());
        assert!(!store.delete(meta.id).await.unwrap(), "deleted twice");
    }
    drop(store);
    let store = backend.open().await;
    let listed: Vec<_> = store.list(&ListQuery::default()).await.unwrap().items;
    assert_eq!(listed, vec![kept.clone()]);
    assert_eq!(read(&*store, kept.id, None).await.unwrap(), b"{\"k\": 3}");
    if let Some(objects) = backend.objects() {
        let names: Vec<String> = objects
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert!(
            !names
                .iter()
                .any(|name| name.contains(&large.id.to_string())),
            "the deleted large item's object is still there: {names:?}"
        );
    }
}

pub async fn held_items_are_not_deleted_until_released(backend: &dyn Backend) {
    let store = backend.open().await;
    let meta = put(&*store, dict("10.0.0.1:1"), b"{}").await;
    let held = store.set_hold(meta.id, true).await.unwrap().unwrap();
    assert!(held.held);
    let err = store.delete(meta.id).await.err().unwrap();
    assert!(
        matches!(err, StoreError::Held(id) if id == meta.id),
        "{err}"
    );
    drop(store);
    let store = backend.open().await;
    assert!(
        store.get(meta.id).await.unwrap().unwrap().held,
        "the hold did not last"
    );
    let released = store.set_hold(meta.id, false).await.unwrap().unwrap();
    assert!(!released.held);
    assert!(store.delete(meta.id).await.unwrap());
    assert!(store.set_hold(meta.id, true).await.unwrap().is_none());
}

pub async fn committed_items_survive_a_reopen_and_abandoned_ones_never_appear(
    backend: &dyn Backend,
) {
    let store = backend.open().await;
    let small = put(&*store, dict("10.0.0.1:1"), b"{\"a\": 1}").await;
    let large_data = content(6 * 1024 * 1024, 9);
    let large = put(&*store, text("10.0.0.1:1", "l.txt"), &large_data).await;
    // Writers that never commit: one small, one large (its upload begun).
    let mut abandoned_small = store.begin(dict("10.0.0.1:2")).await.unwrap();
    abandoned_small.write(b"{\"never\": 1}").await.unwrap();
    let mut abandoned_large = store.begin(text("10.0.0.1:2", "x.txt")).await.unwrap();
    for packet in content(7 * 1024 * 1024, 4).chunks(48_000) {
        abandoned_large.write(packet).await.unwrap();
    }
    drop(abandoned_small);
    drop(abandoned_large);
    drop(store);

    let store = backend.open().await;
    let listed = store.list(&ListQuery::default()).await.unwrap().items;
    assert_eq!(listed, vec![large.clone(), small.clone()]);
    assert_eq!(read(&*store, large.id, None).await.unwrap(), large_data);
    if let Some(objects) = backend.objects() {
        // The abandoned upload is aborted: no object, and no parts, remain.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let items: Vec<String> = objects
                .list(None)
                .map_ok(|meta| meta.location.to_string())
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .into_iter()
                .filter(|name| name.contains("/items/"))
                .collect();
            assert!(items.len() <= 1, "{items:?}");
            if items.len() == 1 {
                assert!(items[0].contains(&large.id.to_string()));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
    }
}

pub async fn concurrent_writers_all_commit(backend: &dyn Backend) {
    let store: Arc<dyn Store> = backend.open().await;
    let tasks: Vec<_> = (0..32u8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut metas = Vec::new();
                for i in 0..8u8 {
                    let len = if (t + i) % 17 == 0 {
                        300_000
                    } else {
                        50 + usize::from(i)
                    };
                    let data = content(len, t ^ i);
                    let meta = put(&*store, dict(&format!("10.0.1.{t}:1")), &data).await;
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
    assert_eq!(store.count().await, all.len());
    drop(store);
    let store = backend.open().await;
    assert_eq!(store.count().await, all.len());
    for (meta, data) in &all {
        assert_eq!(store.get(meta.id).await.unwrap().as_ref(), Some(meta));
        assert_eq!(&read(&*store, meta.id, None).await.unwrap(), data);
    }
}

pub async fn committed_items_are_announced(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut events = store.subscribe();
    let meta = put(&*store, dict("10.0.0.1:1"), b"{\"e\": 1}").await;
    let announced = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(announced.id, meta.id);
}
